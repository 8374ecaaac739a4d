using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

/// <summary>
/// Data-parallel sharding: rank r of W takes rows [r B / W, (r + 1) B / W) of every global batch. Checked against
/// the 1-rank loader on the same data and seed: the shards, concatenated in rank order, are its batches exactly,
/// every rank reports its position, and a rank resumed from that position continues its own shard exactly.
/// </summary>
public sealed class DataShardTests
{
    private static TokenizedDataset Dataset()
    {
        var records = new SyntheticTask(SyntheticTaskKind.Reverse).Generate(17, seed: 5)
            .Select((r, i) => new DataRecord($"synthetic:{i}", null, r, null)).ToList();
        return TokenizedDataset.Build(records, new ByteTokenizer(), new DatasetOptions(16, Template: InstructionTemplate.Compact));
    }

    private static DataLoaderOptions Options(bool pack, int rank = 0, int worldSize = 1) =>
        new(BatchSize: 6, SequenceLength: 16, Seed: 9, Shuffle: true, Pack: pack, PadId: ByteTokenizer.Pad, Rank: rank, WorldSize: worldSize);

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    [InlineData(true, 3)]
    [InlineData(false, 6)]
    public void TheShardsOfEveryRankMakeTheOneRankBatch(bool pack, int worldSize)
    {
        TokenizedDataset dataset = Dataset();
        var single = new DataLoader(dataset, Options(pack));
        var ranks = Enumerable.Range(0, worldSize).Select(r => new DataLoader(dataset, Options(pack, r, worldSize))).ToList();
        // 12 global batches of 6 rows: past two epochs of 17 samples, packed rows carrying samples across shards.
        for (int step = 0; step < 12; step++)
        {
            Batch whole = single.Next();
            List<Batch> shards = ranks.Select(l => l.Next()).ToList();
            Assert.All(shards, s => Assert.Equal(6 / worldSize, s.BatchSize));
            Assert.Equal(whole.InputIds, shards.SelectMany(s => s.InputIds));
            Assert.Equal(whole.Labels, shards.SelectMany(s => s.Labels));
            Assert.All(shards, s => Assert.Equal(whole.PositionAfter, s.PositionAfter));
            Assert.All(shards, s => Assert.Equal(whole.TokenCount, s.GlobalTokenCount));
            Assert.Equal(whole.TokenCount, shards.Sum(s => s.TokenCount));
        }
        Assert.True(single.Position.Epoch >= 2);
    }

    [Fact]
    public void OneRankBatchesCountTheirOwnTokensAsGlobal()
    {
        Batch batch = new DataLoader(Dataset(), Options(pack: true)).Next();
        Assert.Equal(batch.TokenCount, batch.GlobalTokenCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ARankResumedFromItsPositionContinuesItsShardExactly(bool pack)
    {
        TokenizedDataset dataset = Dataset();
        var uninterrupted = new DataLoader(dataset, Options(pack, 1, 2));
        List<Batch> expected = Enumerable.Range(0, 10).Select(_ => uninterrupted.Next()).ToList();
        var first = new DataLoader(dataset, Options(pack, 1, 2));
        for (int i = 0; i < 4; i++)
            first.Next();
        var resumed = new DataLoader(dataset, Options(pack, 1, 2), first.Position);
        for (int i = 4; i < 10; i++)
        {
            Batch b = resumed.Next();
            Assert.Equal(expected[i].InputIds, b.InputIds);
            Assert.Equal(expected[i].Labels, b.Labels);
        }
    }

    [Fact]
    public void AGlobalBatchThatDoesNotSplitEvenlyIsRefused()
    {
        var e = Assert.Throws<UserErrorException>(() => new DataLoader(Dataset(), Options(false, 0, 4)));
        Assert.Equal("the global batch of 6 rows cannot be split evenly over 4 ranks; make training.batch_size a multiple of 4.", e.Message);
    }
}
