namespace FineTune.Trainer.Data;

/// <summary>
/// Batch shape and order: BatchSize rows of SequenceLength positions; Shuffle draws each epoch's order from Seed
/// (same seed, same batches, on any machine); Pack fills every row completely with consecutive samples (a sample
/// may continue in the next row), otherwise each row holds one sample padded with PadId and label -100.
/// SequenceLength must be the one the <see cref="TokenizedDataset"/> was built for.
/// </summary>
public sealed record DataLoaderOptions(int BatchSize, int SequenceLength, ulong Seed = 0, bool Shuffle = true, bool Pack = false, int PadId = 0)
{
    public void Validate()
    {
        if (BatchSize < 1)
            throw new UserErrorException($"the batch size must be at least 1, not {BatchSize}.");
        if (SequenceLength < 1)
            throw new UserErrorException($"the sequence length must be at least 1, not {SequenceLength}.");
    }
}
