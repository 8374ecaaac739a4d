using FineTune.IO.Safetensors;
using FineTune.Tests;
using Xunit;

namespace FineTune.IO.Tests.Safetensors;

public sealed class SafetensorsIndexTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void ShardNamesFollowTheHuggingFacePattern()
    {
        Assert.Equal("model-00001-of-00002.safetensors", SafetensorsIndex.ShardFileName(1, 2));
        Assert.Equal("model-00012-of-00030.safetensors", SafetensorsIndex.ShardFileName(12, 30));
        Assert.Equal("model.safetensors", SafetensorsIndex.ShardFileName(1, 1));
    }

    [Fact]
    public void PlannerFillsShardsInOrderAndIsolatesOversizedTensors()
    {
        var tensors = new[] { ("a", 40L), ("b", 50L), ("c", 20L), ("huge", 150L), ("d", 100L), ("e", 1L) };
        var shards = SafetensorsShardPlanner.Plan(tensors, maxShardByteCount: 100);
        // a+b=90; c would tip to 110 -> new shard; huge > 100 alone; d: 20+100 > 100 -> new; e: 101 > 100 -> new.
        Assert.Equal(new[] { new[] { "a", "b" }, new[] { "huge" }, new[] { "c" }, new[] { "d" }, new[] { "e" } },
            shards.Select(shard => shard.ToArray()).ToArray());
        Assert.Single(SafetensorsShardPlanner.Plan(Array.Empty<(string, long)>()));
    }

    [Fact]
    public void IndexRoundTripsAndToleratesMissingMetadata()
    {
        string path = _directory.File(SafetensorsIndex.FileName);
        var index = new SafetensorsIndex(new Dictionary<string, string>
        {
            ["model.norm.weight"] = "model-00002-of-00002.safetensors",
            ["model.embed_tokens.weight"] = "model-00001-of-00002.safetensors",
        }, totalByteCount: 123456);
        index.Write(path);
        string text = File.ReadAllText(path);
        Assert.StartsWith("{\n  \"metadata\": {\n    \"total_size\": 123456\n  },\n  \"weight_map\": {\n    \"model.embed_tokens.weight\"", text);
        SafetensorsIndex read = SafetensorsIndex.Read(path);
        Assert.Equal(123456, read.TotalByteCount);
        Assert.Equal(new[] { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" }, read.ShardFileNames);

        File.WriteAllText(path, "{\"weight_map\":{\"w\":\"model.safetensors\"}}");
        Assert.Null(SafetensorsIndex.Read(path).TotalByteCount);
    }

    [Theory]
    [InlineData("{\"metadata\":{}}", "weight_map")]
    [InlineData("{\"weight_map\":{\"w\":\"../../etc/passwd\"}}", "not a plain file name")]
    [InlineData("{\"weight_map\":{\"w\":3}}", "file name string")]
    [InlineData("{\"weight_map\":", "well-formed JSON")]
    public void BadIndexesAreUserErrors(string json, string expected)
    {
        string path = _directory.File("bad.index.json");
        File.WriteAllText(path, json);
        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsIndex.Read(path));
        Assert.Contains(expected, error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void ADuplicatedKeyAnOversizedIndexAndAFifoAreRefusedNamingTheFile()
    {
        // issue 21: the index was read whole with no bound and no strict rule (a repeated total_size silently took one)
        string path = _directory.File(SafetensorsIndex.FileName);
        File.WriteAllText(path, "{\"metadata\": {\"total_size\": 4, \"total_size\": 8}, \"weight_map\": {\"w\": \"model.safetensors\"}}");
        Assert.Equal($"{path} is not a valid safetensors file: the index has the key $.metadata.total_size twice, and which one counts is ambiguous.",
            HostileFiles.Refusal(() => SafetensorsIndex.Read(path)));

        HostileFiles.Oversized(path, InputFile.ConfigLimitByteCount + 1);
        string oversized = HostileFiles.Refusal(() => SafetensorsIndex.Read(path));
        Assert.StartsWith($"{SafetensorsIndex.FileName} {path} has ", oversized);
        Assert.Contains("bytes, more than the ", oversized);

        HostileFiles.Fifo(path);
        Assert.StartsWith($"{SafetensorsIndex.FileName} {path} is a FIFO (named pipe), not a regular file", HostileFiles.Refusal(() => SafetensorsIndex.Read(path)));
    }
}
