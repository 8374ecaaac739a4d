using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Records tokenized into <see cref="TokenizedSample"/>s that fit the sequence length, with the statistics of how
/// they were made. Text documents become prefix (BOS) + text + EOS, all trained, so EOS separates packed documents;
/// alpaca records go through <see cref="InstructionFormatter"/>, conversations through <see cref="ChatFormatter"/>.
/// A sample with more than SequenceLength + 1 ids follows the <see cref="OverflowPolicy"/>; a sample left with no
/// trained label at a position &gt; 0 (e.g. a prompt longer than the limit) is dropped, because it teaches nothing.
/// </summary>
public sealed class TokenizedDataset
{
    public TokenizedDataset(IReadOnlyList<TokenizedSample> samples, DatasetStatistics statistics)
    {
        Samples = samples;
        Statistics = statistics;
    }

    public IReadOnlyList<TokenizedSample> Samples { get; }
    public DatasetStatistics Statistics { get; }

    public static TokenizedDataset Build(IReadOnlyList<DataRecord> records, ITokenizer tokenizer, DatasetOptions options)
    {
        if (options.SequenceLength < 1)
            throw new UserErrorException($"the sequence length must be at least 1, not {options.SequenceLength}.");
        InstructionFormatter? instructions = null;
        ChatFormatter? chats = null;
        var samples = new List<TokenizedSample>();
        long tokenCount = 0, trainedCount = 0;
        int truncated = 0, split = 0, dropped = 0;
        int maxIds = options.SequenceLength + 1;
        foreach (DataRecord record in records)
        {
            TokenizedSample sample;
            OverflowPolicy policy;
            switch (record.Format)
            {
                case DataFormat.Text:
                    int eos = tokenizer.EosId ?? throw new UserErrorException(
                        $"{tokenizer.Source}: the tokenizer declares no EOS token, which separates packed text documents; name one as eos_token in tokenizer_config.json.");
                    sample = TokenizedSample.AllTrained([.. tokenizer.PrefixIds, .. tokenizer.Encode(record.Text!), eos]);
                    policy = options.Overflow ?? OverflowPolicy.Split;
                    break;
                case DataFormat.Alpaca:
                    instructions ??= new InstructionFormatter(tokenizer, options.Template);
                    sample = instructions.Format(record.Instruction!);
                    policy = options.Overflow ?? OverflowPolicy.Truncate;
                    break;
                default:
                    chats ??= new ChatFormatter(tokenizer, options.Chat ?? ChatTemplate.ChatMl);
                    try
                    {
                        sample = chats.Format(record.Messages!);
                    }
                    catch (Jinja.JinjaException e)
                    {
                        throw ChatFormatter.RecordError(record.Location, chats.Template, e);
                    }
                    catch (UserErrorException e) when (e.InnerException is null)
                    {
                        throw new UserErrorException($"{record.Location}: {e.Message}", e); // the record's place in front
                    }
                    policy = options.Overflow ?? OverflowPolicy.Truncate;
                    break;
            }

            List<TokenizedSample> pieces = [sample];
            if (sample.Ids.Length > maxIds)
            {
                switch (policy)
                {
                    case OverflowPolicy.Drop:
                        pieces = [];
                        break;
                    case OverflowPolicy.Truncate:
                        pieces = [new TokenizedSample(sample.Ids[..maxIds], sample.Labels[..maxIds])];
                        break;
                    case OverflowPolicy.Split:
                        pieces = SplitSample(sample, options.SequenceLength);
                        break;
                }
            }
            // Position 0's label is never a target (nothing precedes it), so a sample must train a later position.
            pieces = pieces.Where(p => p.Ids.Length >= 2 && p.Labels.AsSpan(1).ContainsAnyExcept(TokenizedSample.IgnoreIndex)).ToList();
            if (pieces.Count == 0)
            {
                dropped++;
                continue;
            }
            if (sample.Ids.Length > maxIds)
            {
                if (policy == OverflowPolicy.Truncate) truncated++;
                else split++;
            }
            foreach (TokenizedSample piece in pieces)
            {
                samples.Add(piece);
                tokenCount += piece.Ids.Length;
                trainedCount += piece.TrainableCount;
            }
        }
        var statistics = new DatasetStatistics(records.Count, samples.Count, tokenCount, trainedCount, truncated, split, dropped);
        if (samples.Count == 0)
            throw new UserErrorException($"no training sample is left from {records.Count} records ({statistics}); check the data format and the sequence length.");
        return new TokenizedDataset(samples, statistics);
    }

    /// <summary>Pieces of at most length + 1 ids starting every length ids, so piece k's last id is piece k+1's first
    /// and every (input, next id) position of the sample appears exactly once.</summary>
    private static List<TokenizedSample> SplitSample(TokenizedSample sample, int length)
    {
        var pieces = new List<TokenizedSample>();
        for (int start = 0; start + 1 < sample.Ids.Length; start += length)
        {
            int end = Math.Min(start + length + 1, sample.Ids.Length);
            pieces.Add(new TokenizedSample(sample.Ids[start..end], sample.Labels[start..end]));
        }
        return pieces;
    }
}
