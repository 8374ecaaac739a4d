namespace FineTune.Trainer.Data;

/// <summary>
/// Turns a <see cref="TokenizedDataset"/> into an endless, deterministic stream of <see cref="Batch"/>es. Epoch e
/// visits every sample once in the order SplitMix64.Permutation(count, seed, e) (or in file order without shuffle),
/// and epochs follow each other without a break, so the last batch of an epoch may start the next one and no batch
/// is ever partial. Resuming from a saved <see cref="DataPosition"/> rebuilds the permutation of that epoch and
/// continues with exactly the batches the uninterrupted stream would have produced.
/// Data parallel (<see cref="DataLoaderOptions.WorldSize"/> > 1): every rank builds the same global batch and
/// keeps its own rows, so the position after a batch, and therefore resume, is the same on every rank.
/// Not thread-safe; one loader per training loop.
/// </summary>
public sealed class DataLoader
{
    private readonly IReadOnlyList<TokenizedSample> _samples;
    private readonly DataLoaderOptions _options;
    private int _epoch;
    private int _sampleIndex;
    private int _tokenOffset;
    private int[] _order;

    public DataLoader(TokenizedDataset dataset, DataLoaderOptions options, DataPosition? resumeFrom = null)
    {
        options.Validate();
        _samples = dataset.Samples;
        _options = options;
        // TokenizedDataset.Build guarantees both; a hand-made dataset that breaks them is a bug.
        if (_samples.Count == 0 || _samples.Any(s => s.Ids.Length < 2 || s.Labels.Length != s.Ids.Length))
            throw new ArgumentException("a DataLoader needs at least one sample, each with 2 or more ids and one label per id", nameof(dataset));
        if (resumeFrom is not null)
        {
            if (resumeFrom.SampleCount != _samples.Count || resumeFrom.Seed != options.Seed)
                throw new UserErrorException(
                    $"the saved data position is for {resumeFrom.SampleCount} samples with seed {resumeFrom.Seed}, but the data now gives {_samples.Count} samples with seed {options.Seed}; resume with the same data, tokenizer, sequence length and seed, or start a new run.");
            if (resumeFrom.Epoch < 0 || resumeFrom.SampleIndex < 0 || resumeFrom.SampleIndex >= _samples.Count || resumeFrom.TokenOffset < 0)
                throw new UserErrorException($"the saved data position {resumeFrom} is out of range; the checkpoint is corrupt.");
            _epoch = resumeFrom.Epoch;
            _sampleIndex = resumeFrom.SampleIndex;
            _tokenOffset = resumeFrom.TokenOffset;
        }
        _order = OrderOf(_epoch);
        if (_tokenOffset >= PositionsOf(Current))
            throw new UserErrorException($"the saved data position {resumeFrom} points past the end of its sample; the checkpoint does not match the data.");
    }

    /// <summary>
    /// Batches that one pass over the data takes, rounded up (for step counts and learning-rate schedules): packed,
    /// all training positions over B x T; otherwise samples over B. Epochs run into each other, so the real count
    /// of batches starting in an epoch may differ by one.
    /// </summary>
    public int BatchesPerEpoch => _options.Pack
        ? (int)((_samples.Sum(s => (long)s.Ids.Length - 1) + (long)_options.BatchSize * _options.SequenceLength - 1) / ((long)_options.BatchSize * _options.SequenceLength))
        : (_samples.Count + _options.BatchSize - 1) / _options.BatchSize;

    public DataPosition Position => new(_epoch, _sampleIndex, _tokenOffset, _samples.Count, _options.Seed);

    private TokenizedSample Current => _samples[_order[_sampleIndex]];

    /// <summary>This rank's rows of the next global batch (all of it with one rank).</summary>
    public Batch Next()
    {
        (long[] inputs, long[] labels) = NextGlobalRows();
        int length = _options.SequenceLength, rows = _options.RowsPerRank;
        if (_options.WorldSize == 1)
            return new Batch(rows, length, inputs, labels, Position);
        // The loss of a data-parallel step is normalised by the tokens of the whole global batch, not of one shard.
        int globalTokenCount = labels.Count(l => l != TokenizedSample.IgnoreIndex);
        long[] myInputs = inputs.AsSpan(_options.Rank * rows * length, rows * length).ToArray();
        long[] myLabels = labels.AsSpan(_options.Rank * rows * length, rows * length).ToArray();
        return new Batch(rows, length, myInputs, myLabels, Position, globalTokenCount);
    }

    /// <summary>(B, T) inputs and labels of the next global batch, the position advanced past it.</summary>
    private (long[] Inputs, long[] Labels) NextGlobalRows()
    {
        int rows = _options.BatchSize, length = _options.SequenceLength;
        var inputs = new long[rows * length];
        var labels = new long[rows * length];
        Array.Fill(inputs, _options.PadId);
        Array.Fill(labels, TokenizedSample.IgnoreIndex);
        for (int row = 0; row < rows; row++)
        {
            int filled = 0;
            do
            {
                TokenizedSample sample = Current;
                int available = PositionsOf(sample) - _tokenOffset;
                int take = Math.Min(available, length - filled);
                int offset = row * length + filled;
                for (int j = 0; j < take; j++)
                {
                    // Position p reads Ids[p] and predicts Ids[p + 1], whose label says whether it is trained.
                    inputs[offset + j] = sample.Ids[_tokenOffset + j];
                    labels[offset + j] = sample.Labels[_tokenOffset + j + 1];
                }
                filled += take;
                _tokenOffset += take;
                // Without packing a row holds one sample; any rest (only possible when a sample is longer than the
                // row, which TokenizedDataset prevents) is dropped rather than carried over.
                if (_tokenOffset == PositionsOf(sample) || !_options.Pack)
                    Advance();
            }
            while (_options.Pack && filled < length);
        }
        return (inputs, labels);
    }

    /// <summary>Training positions of a sample: one per id that has a successor.</summary>
    private static int PositionsOf(TokenizedSample sample) => sample.Ids.Length - 1;

    private void Advance()
    {
        _tokenOffset = 0;
        if (++_sampleIndex < _samples.Count)
            return;
        _sampleIndex = 0;
        _epoch++;
        _order = OrderOf(_epoch);
    }

    private int[] OrderOf(int epoch)
    {
        if (_options.Shuffle)
            return SplitMix64.Permutation(_samples.Count, _options.Seed, epoch);
        var identity = new int[_samples.Count];
        for (int i = 0; i < identity.Length; i++)
            identity[i] = i;
        return identity;
    }
}
