using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

public sealed class SyntheticTaskTests
{
    [Fact]
    public void GenerationIsDeterministicAndAnswersAreRight()
    {
        var task = new SyntheticTask(SyntheticTaskKind.Reverse);
        List<InstructionRecord> a = task.Generate(50, seed: 1), b = task.Generate(50, seed: 1);
        Assert.Equal(a, b);
        Assert.NotEqual(a, task.Generate(50, seed: 2));
        Assert.All(a, r =>
        {
            Assert.Equal("reverse", r.Instruction);
            Assert.InRange(r.Input.Length, 3, 8);
            Assert.Equal(new string(r.Input.Reverse().ToArray()), r.Output);
        });
        var add = new SyntheticTask(SyntheticTaskKind.Add).Generate(50, seed: 1);
        Assert.All(add, r => Assert.Equal(r.Input.Split('+').Sum(int.Parse).ToString(), r.Output));
    }

    [Fact]
    public void ExactnessNeedsTheRightTextThenEos()
    {
        var tokenizer = new ByteTokenizer();
        var task = new SyntheticTask(SyntheticTaskKind.Reverse);
        var record = new InstructionRecord("reverse", "abc", "cba");
        int[] right = [.. tokenizer.Encode("cba"), ByteTokenizer.Eos, 'x'];
        Assert.True(task.IsExactlyRight(record, right, tokenizer));
        Assert.False(task.IsExactlyRight(record, tokenizer.Encode("cba"), tokenizer));            // never stops
        Assert.False(task.IsExactlyRight(record, [.. tokenizer.Encode("cb"), ByteTokenizer.Eos], tokenizer));
        Assert.False(task.IsExactlyRight(record, [.. tokenizer.Encode("cbaa"), ByteTokenizer.Eos], tokenizer));
        Assert.Equal(0.5, task.Accuracy([record, record], [right, [ByteTokenizer.Eos]], tokenizer));
    }

    [Fact]
    public void JsonlRoundTripsThroughTheDataReaderAndFitsShortSequences()
    {
        string folder = Directory.CreateTempSubdirectory("finetune-synth-").FullName;
        try
        {
            string path = Path.Combine(folder, "reverse.jsonl");
            var task = new SyntheticTask(SyntheticTaskKind.Reverse);
            List<InstructionRecord> records = task.Generate(200, seed: 9);
            SyntheticTask.WriteJsonl(path, records);
            List<DataRecord> read = DataFileReader.ReadFile(path, DataFormat.Auto);
            Assert.Equal(records, read.Select(r => r.Instruction));
            // BOS + "reverse: " + 8 letters + "\n" + 8 letters + EOS = 28 ids at most: fits sequence length 32.
            var dataset = TokenizedDataset.Build(read, new ByteTokenizer(), new DatasetOptions(32, Template: InstructionTemplate.Compact));
            Assert.Equal((200, 0, 0), (dataset.Statistics.SampleCount, dataset.Statistics.TruncatedCount, dataset.Statistics.DroppedCount));
            Assert.True(dataset.Samples.Max(s => s.Ids.Length) <= 28);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
