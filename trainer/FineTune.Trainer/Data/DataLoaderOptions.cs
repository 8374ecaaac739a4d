namespace FineTune.Trainer.Data;

/// <summary>
/// Batch shape and order: BatchSize rows of SequenceLength positions; Shuffle draws each epoch's order from Seed
/// (same seed, same batches, on any machine); Pack fills every row completely with consecutive samples (a sample
/// may continue in the next row), otherwise each row holds one sample padded with PadId and label -100.
/// SequenceLength must be the one the <see cref="TokenizedDataset"/> was built for.
/// Data parallel: BatchSize is the global batch, the same on every rank; rank <see cref="Rank"/> of
/// <see cref="WorldSize"/> takes rows [Rank * B / W, (Rank + 1) * B / W) of each, so the ranks' shards are disjoint,
/// their union is the 1-rank batch, and the order stays a function of Seed and position alone.
/// </summary>
public sealed record DataLoaderOptions(int BatchSize, int SequenceLength, ulong Seed = 0, bool Shuffle = true, bool Pack = false, int PadId = 0,
    int Rank = 0, int WorldSize = 1)
{
    /// <summary>Rows of each global batch this rank trains on.</summary>
    public int RowsPerRank => BatchSize / WorldSize;

    public void Validate()
    {
        if (BatchSize < 1)
            throw new UserErrorException($"the batch size must be at least 1, not {BatchSize}.");
        if (SequenceLength < 1)
            throw new UserErrorException($"the sequence length must be at least 1, not {SequenceLength}.");
        if (WorldSize < 1 || Rank < 0 || Rank >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(Rank), $"rank {Rank} is not in 0..{WorldSize - 1}");
        if (BatchSize % WorldSize != 0)
            throw new UserErrorException($"the global batch of {BatchSize} rows cannot be split evenly over {WorldSize} ranks; make training.batch_size a multiple of {WorldSize}.");
    }
}
