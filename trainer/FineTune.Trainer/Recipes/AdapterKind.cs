namespace FineTune.Trainer.Recipes;

/// <summary>model.adapter: train every weight (None, full fine-tuning) or LoRA adapters over a frozen base (Lora).</summary>
public enum AdapterKind
{
    None,
    Lora,
}
