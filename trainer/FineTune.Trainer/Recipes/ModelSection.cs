namespace FineTune.Trainer.Recipes;

/// <summary>
/// model: either a Hugging Face folder to fine-tune (<see cref="Path"/>) or an inline config to train from scratch,
/// and whether every weight trains or LoRA adapters over the frozen base (<see cref="Adapter"/>, <see cref="Lora"/>).
/// </summary>
public sealed record ModelSection
{
    public string? Path { get; init; }
    public LlamaConfigSection? Config { get; init; }
    public AdapterKind Adapter { get; init; }

    /// <summary>The adapter settings; meaningful when <see cref="Adapter"/> is Lora (defaults otherwise).</summary>
    public LoraSection Lora { get; init; } = null!;

    internal static ModelSection From(RecipeValues v) => new()
    {
        Path = v.String("model.path"),
        Config = v.IsSectionPresent("model.config") ? LlamaConfigSection.From(v) : null,
        Adapter = v.Choice<AdapterKind>("model.adapter"),
        Lora = LoraSection.From(v),
    };
}
