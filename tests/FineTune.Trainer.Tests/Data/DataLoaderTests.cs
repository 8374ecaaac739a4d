using System.Text.Json;
using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

public sealed class DataLoaderTests
{
    private static TokenizedDataset SyntheticDataset(int count, int sequenceLength)
    {
        var records = new SyntheticTask(SyntheticTaskKind.Reverse).Generate(count, seed: 11)
            .Select((r, i) => new DataRecord($"synthetic:{i}", null, r, null)).ToList();
        return TokenizedDataset.Build(records, new ByteTokenizer(), new DatasetOptions(sequenceLength, Template: InstructionTemplate.Compact));
    }

    [Fact]
    public void SplitMix64MatchesTheReferenceSequence()
    {
        // Vigna's splitmix64.c seeded with 1234567 (also recomputed in Python for this test).
        var random = new SplitMix64(1234567);
        Assert.Equal(6457827717110365317UL, random.NextUInt64());
        Assert.Equal(3203168211198807973UL, random.NextUInt64());
        Assert.Equal(9817491932198370423UL, random.NextUInt64());
    }

    [Fact]
    public void PermutationIsAPermutationAndDependsOnSeedAndEpoch()
    {
        int[] a = SplitMix64.Permutation(100, 5, 0);
        Assert.Equal(Enumerable.Range(0, 100), a.Order());
        Assert.Equal(a, SplitMix64.Permutation(100, 5, 0));
        Assert.NotEqual(a, SplitMix64.Permutation(100, 5, 1));
        Assert.NotEqual(a, SplitMix64.Permutation(100, 6, 0));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ResumedStreamEqualsUninterruptedStream(bool pack)
    {
        // 13 samples, 3 rows of 16: epochs wrap every few batches, and packed rows carry samples across rows.
        TokenizedDataset dataset = SyntheticDataset(13, 16);
        var options = new DataLoaderOptions(BatchSize: 3, SequenceLength: 16, Seed: 42, Shuffle: true, Pack: pack, PadId: ByteTokenizer.Pad);
        var uninterrupted = new DataLoader(dataset, options);
        List<Batch> expected = Enumerable.Range(0, 20).Select(_ => uninterrupted.Next()).ToList();
        Assert.True(expected[^1].PositionAfter.Epoch >= 2);

        foreach (int stopAfter in new[] { 1, 5, 9, 14 })
        {
            var first = new DataLoader(dataset, options);
            for (int i = 0; i < stopAfter; i++)
                first.Next();
            string saved = JsonSerializer.Serialize(first.Position);
            var position = JsonSerializer.Deserialize<DataPosition>(saved)!;
            Assert.Equal(first.Position, position);
            if (pack && stopAfter == 5)
                Assert.True(position.TokenOffset > 0 || position.SampleIndex > 0);
            var resumed = new DataLoader(dataset, options, position);
            for (int i = stopAfter; i < expected.Count; i++)
            {
                Batch batch = resumed.Next();
                Assert.Equal(expected[i].InputIds, batch.InputIds);
                Assert.Equal(expected[i].Labels, batch.Labels);
                Assert.Equal(expected[i].PositionAfter, batch.PositionAfter);
            }
        }
    }

    [Fact]
    public void PackedCarryOverIsPartOfThePosition()
    {
        // Some position in a packed stream sits inside a sample: its TokenOffset must be restored, not rounded.
        TokenizedDataset dataset = SyntheticDataset(7, 32);
        var options = new DataLoaderOptions(1, 32, Seed: 3, Pack: true);
        var loader = new DataLoader(dataset, options);
        DataPosition? inside = null;
        for (int i = 0; i < 10 && inside is null; i++)
            if (loader.Next().PositionAfter is { TokenOffset: > 0 } p)
                inside = p;
        Assert.NotNull(inside);
        var resumed = new DataLoader(dataset, options, inside);
        Assert.Equal(loader.Next().InputIds, resumed.Next().InputIds);
    }

    [Fact]
    public void ResumeWithDifferentDataIsRefused()
    {
        TokenizedDataset dataset = SyntheticDataset(13, 16);
        var position = new DataPosition(0, 3, 0, SampleCount: 12, Seed: 42);
        var e = Assert.Throws<UserErrorException>(() => new DataLoader(dataset, new DataLoaderOptions(2, 16, Seed: 42), position));
        Assert.Contains("12 samples", e.Message);
    }

    [Fact]
    public void PackedTextHasEosBetweenDocumentsAndNoPadding()
    {
        var tokenizer = new ByteTokenizer();
        DataRecord[] documents = [new("a", "abc", null, null), new("b", "de", null, null)];
        TokenizedDataset dataset = TokenizedDataset.Build(documents, tokenizer, new DatasetOptions(4));
        // Samples: [BOS a b c EOS] (5 ids, 4 positions) and [BOS d e EOS] (3 positions).
        var loader = new DataLoader(dataset, new DataLoaderOptions(2, 4, Shuffle: false, Pack: true));
        Batch batch = loader.Next();
        long bos = ByteTokenizer.Bos, eos = ByteTokenizer.Eos;
        Assert.Equal([bos, 'a', 'b', 'c', bos, 'd', 'e', bos], batch.InputIds);
        Assert.Equal(['a', 'b', 'c', eos, 'd', 'e', eos, 'a'], batch.Labels);
        Assert.Equal(8, batch.TokenCount);
        Assert.Equal(new DataPosition(1, 0, 1, 2, 0), batch.PositionAfter);
        Assert.Equal(1, loader.BatchesPerEpoch); // 7 positions fit one 2 x 4 batch
        Assert.Equal(1, new DataLoader(dataset, new DataLoaderOptions(2, 4, Pack: false)).BatchesPerEpoch);
        Assert.Equal(2, new DataLoader(dataset, new DataLoaderOptions(1, 4, Pack: false)).BatchesPerEpoch);
    }

    [Fact]
    public void OverflowIsTruncatedSplitOrDroppedAndCounted()
    {
        var tokenizer = new ByteTokenizer();
        DataRecord[] records = [new("t", "0123456789", null, null), new("i", null, new InstructionRecord("x", "", "abcdefgh"), null),
            new("p", null, new InstructionRecord("a long prompt", "", "z"), null)];
        // Text: 12 ids > 5 -> split into pieces of 5 ids starting every 4 ids: 0-4, 4-8, 8-11 (3 pieces, 11 positions).
        // Instruction "x\n" + "abcdefgh" + EOS = 1 + 2 + 9 ids -> truncated to 5, keeps 2 trained labels.
        // "a long prompt\n" alone is longer than 5 ids -> nothing trained after truncation -> dropped.
        TokenizedDataset dataset = TokenizedDataset.Build(records, tokenizer, new DatasetOptions(4, Template: InstructionTemplate.Compact));
        DatasetStatistics s = dataset.Statistics;
        Assert.Equal((3, 4, 1, 1, 1), (s.RecordCount, s.SampleCount, s.TruncatedCount, s.SplitCount, s.DroppedCount));
        Assert.Equal([4, 4, 3, 4], dataset.Samples.Select(x => x.Ids.Length - 1));
        Assert.Equal(11 + 2, s.TrainedTokenCount);
        TokenizedDataset dropped = TokenizedDataset.Build([.. records, new("s", "ok", null, null)], tokenizer,
            new DatasetOptions(4, Overflow: OverflowPolicy.Drop, Template: InstructionTemplate.Compact));
        Assert.Equal((3, 1), (dropped.Statistics.DroppedCount, dropped.Statistics.SampleCount));
        Assert.Throws<UserErrorException>(() => TokenizedDataset.Build(records, tokenizer, new DatasetOptions(4, Overflow: OverflowPolicy.Drop)));
    }
}
