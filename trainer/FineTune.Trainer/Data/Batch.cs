namespace FineTune.Trainer.Data;

/// <summary>
/// One training batch as plain arrays, ready to copy into int64 tensors.
/// InputIds: (B, T) row-major, the tokens the model reads.
/// Labels: (B, T) row-major, already shifted: Labels[b, t] is the token the model must predict after reading
/// InputIds[b, 0..t], so the loss is cross_entropy(logits (B, T, V), Labels (B, T), ignore_index = -100) with no
/// further shifting; -100 marks prompt, non-assistant and padding positions.
/// Packed rows hold several samples one after another with no attention mask between them (as nanoGPT does;
/// torchtune's PackedDataset adds a block-causal mask, FineTune does not); each document ends with its EOS.
/// </summary>
public sealed class Batch
{
    public Batch(int batchSize, int sequenceLength, long[] inputIds, long[] labels, DataPosition positionAfter, int? globalTokenCount = null)
    {
        if (inputIds.Length != batchSize * sequenceLength || labels.Length != inputIds.Length)
            throw new ArgumentException($"arrays must hold {batchSize}x{sequenceLength} elements");
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        InputIds = inputIds;
        Labels = labels;
        PositionAfter = positionAfter;
        TokenCount = labels.Count(l => l != TokenizedSample.IgnoreIndex);
        GlobalTokenCount = globalTokenCount ?? TokenCount;
        if (GlobalTokenCount < TokenCount)
            throw new ArgumentException($"the global batch cannot train fewer tokens ({GlobalTokenCount}) than this shard ({TokenCount})", nameof(globalTokenCount));
    }

    public int BatchSize { get; }
    public int SequenceLength { get; }

    /// <summary>(B, T) int64 token ids.</summary>
    public long[] InputIds { get; }

    /// <summary>(B, T) int64 targets, -100 where ignored.</summary>
    public long[] Labels { get; }

    /// <summary>Number of labels that are not -100: the loss's denominator.</summary>
    public int TokenCount { get; }

    /// <summary>Labels that are not -100 over every rank's shard of this global batch: the denominator of a
    /// data-parallel loss (sum of every rank's token losses / this). Equals <see cref="TokenCount"/> on one rank.</summary>
    public int GlobalTokenCount { get; }

    /// <summary>The loader's position right after this batch; save it with a checkpoint taken after training on it.</summary>
    public DataPosition PositionAfter { get; }

    public ReadOnlySpan<long> InputRow(int row) => InputIds.AsSpan(row * SequenceLength, SequenceLength);

    public ReadOnlySpan<long> LabelRow(int row) => Labels.AsSpan(row * SequenceLength, SequenceLength);
}
