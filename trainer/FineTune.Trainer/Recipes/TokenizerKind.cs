namespace FineTune.Trainer.Recipes;

/// <summary>tokenizer.kind: which tokenizer to build (auto resolves to Hf when model.path is set, Byte otherwise).</summary>
public enum TokenizerKind
{
    Auto,
    Hf,
    Byte,
}
