namespace FineTune.Trainer.Recipes;

/// <summary>dataset: where examples come from and how they become fixed-length sequences.</summary>
public sealed record DatasetSection
{
    public required DatasetFormat Format { get; init; }
    public string? Path { get; init; }
    public required int SeqLen { get; init; }
    public required bool Packing { get; init; }
    public required TruncationMode Truncation { get; init; }
    public required bool Shuffle { get; init; }
    public required SyntheticTask SyntheticTask { get; init; }
    public required int SyntheticCount { get; init; }

    internal static DatasetSection From(RecipeValues v) => new()
    {
        Format = v.Choice<DatasetFormat>("dataset.format"),
        Path = v.String("dataset.path"),
        SeqLen = v.Int("dataset.seq_len"),
        Packing = v.Bool("dataset.packing"),
        Truncation = v.Choice<TruncationMode>("dataset.truncation"),
        Shuffle = v.Bool("dataset.shuffle"),
        SyntheticTask = v.Choice<SyntheticTask>("dataset.synthetic.task"),
        SyntheticCount = v.Int("dataset.synthetic.count"),
    };
}
