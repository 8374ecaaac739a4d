namespace FineTune.Trainer.Recipes;

/// <summary>tokenizer: which tokenizer turns the dataset into ids.</summary>
public sealed record TokenizerSection
{
    /// <summary>Resolved: never Auto (Hf when model.path is set, Byte otherwise).</summary>
    public required TokenizerKind Kind { get; init; }
    /// <summary>Resolved for Hf: tokenizer.path, or model.path when that is null. Null for Byte.</summary>
    public string? Path { get; init; }

    internal static TokenizerSection From(RecipeValues v)
    {
        TokenizerKind kind = v.Choice<TokenizerKind>("tokenizer.kind");
        string? modelPath = v.String("model.path");
        if (kind == TokenizerKind.Auto)
            kind = modelPath is not null || v.String("tokenizer.path") is not null ? TokenizerKind.Hf : TokenizerKind.Byte;
        return new TokenizerSection
        {
            Kind = kind,
            Path = kind == TokenizerKind.Hf ? v.String("tokenizer.path") ?? modelPath : null,
        };
    }
}
