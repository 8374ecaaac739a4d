using FineTune.Trainer.Data;
using FineTune.Trainer.Tests.Tokenizers;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

public sealed class DatasetStatisticsTests
{
    [Fact]
    public void AlpacaTinyStatisticsMatchAnIndependentCount()
    {
        // Recomputed in Python with Fixtures/tokenizers/reference_bpe.py (alpaca prompts, output + <|endoftext|>,
        // truncate to 129 ids, drop when nothing after position 0 is trained): 100 records -> 95 samples,
        // 11118 ids, 3636 trained positions, 52 truncated, 5 dropped.
        ITokenizer tokenizer = TokenizerLoader.Load(FixturePaths.Tokenizer("tiny_bpe_tokenizer.json"));
        List<DataRecord> records = DataFileReader.Read([FixturePaths.Data("alpaca_tiny.json")], DataFormat.Auto);
        DatasetStatistics s = TokenizedDataset.Build(records, tokenizer, new DatasetOptions(128)).Statistics;
        Assert.Equal(new DatasetStatistics(100, 95, 11118, 3636, 52, 0, 5), s);
    }
}
