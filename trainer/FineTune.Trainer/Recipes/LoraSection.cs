namespace FineTune.Trainer.Recipes;

/// <summary>
/// model.lora: the LoRA adapters trained when model.adapter is lora (PEFT's LoraConfig fields under recipe names).
/// Target and trainable names are as written (all-linear unexpanded); the model side resolves them.
/// </summary>
public sealed record LoraSection
{
    public required int Rank { get; init; }
    public required double Alpha { get; init; }
    public required double Dropout { get; init; }
    public required IReadOnlyList<string> TargetModules { get; init; }
    public required IReadOnlyList<string> Trainable { get; init; }

    /// <summary>A PEFT adapter folder to start from; null: fresh adapters (A Kaiming-uniform, B zero).</summary>
    public string? Path { get; init; }

    internal static LoraSection From(RecipeValues v) => new()
    {
        Rank = v.Int("model.lora.rank"),
        Alpha = v.Double("model.lora.alpha"),
        Dropout = v.Double("model.lora.dropout"),
        TargetModules = v.Names("model.lora.target_modules"),
        Trainable = v.Names("model.lora.trainable"),
        Path = v.String("model.lora.path"),
    };
}
