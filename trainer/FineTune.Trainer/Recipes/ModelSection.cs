namespace FineTune.Trainer.Recipes;

/// <summary>model: either a Hugging Face folder to fine-tune (<see cref="Path"/>) or an inline config to train from scratch.</summary>
public sealed record ModelSection
{
    public string? Path { get; init; }
    public LlamaConfigSection? Config { get; init; }

    internal static ModelSection From(RecipeValues v) => new()
    {
        Path = v.String("model.path"),
        Config = v.IsSectionPresent("model.config") ? LlamaConfigSection.From(v) : null,
    };
}
