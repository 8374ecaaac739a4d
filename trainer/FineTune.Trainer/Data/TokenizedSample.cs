namespace FineTune.Trainer.Data;

/// <summary>
/// One training example after tokenization: <see cref="Ids"/> and <see cref="Labels"/> of equal length, in the
/// Hugging Face convention (not yet shifted): Labels[i] is Ids[i] when the model should learn to produce that token,
/// or <see cref="IgnoreIndex"/> (-100) for prompt/non-assistant tokens. The <see cref="DataLoader"/> shifts them
/// into (input, next-token target) pairs, so a sample of n ids gives n-1 training positions.
/// </summary>
public sealed record TokenizedSample(int[] Ids, int[] Labels)
{
    /// <summary>The label that excludes a position from the loss (PyTorch cross_entropy ignore_index).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Number of labels that take part in the loss: all but position 0, which no input precedes.</summary>
    public int TrainableCount => Labels.Skip(1).Count(l => l != IgnoreIndex);

    /// <summary>Ids with every label trained (plain text).</summary>
    public static TokenizedSample AllTrained(int[] ids) => new(ids, (int[])ids.Clone());
}
