using System.Text.Json.Nodes;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>Broken or unsupported tokenizer files end in a UserErrorException naming the file and the problem.</summary>
public sealed class HostileTokenizerTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("finetune-badtok-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Write(string json)
    {
        string path = Path.Combine(_folder, "tokenizer.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string Tweak(Action<JsonNode> change)
    {
        JsonNode root = JsonNode.Parse(File.ReadAllText(FixturePaths.Tokenizer("tiny_bpe_tokenizer.json")))!;
        change(root);
        return root.ToJsonString();
    }

    [Fact]
    public void UnsupportedModelType()
    {
        string path = Write("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""");
        var e = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("model.type \"WordPiece\" is not supported", e.Message);
    }

    [Fact]
    public void UnsupportedPreTokenizer()
    {
        string path = Write(Tweak(root => root["pre_tokenizer"]!["pretokenizers"]![1] = new JsonObject { ["type"] = "Whitespace" }));
        var e = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("pre_tokenizer.pretokenizers[1] type \"Whitespace\" is not supported", e.Message);
    }

    [Fact]
    public void MalformedJsonNamesTheLine()
    {
        string path = Write("{\n  \"model\": {\n    \"type\": \"BPE\",,\n  }\n}");
        var e = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Fact]
    public void MergeOfUnknownTokens()
    {
        string path = Write("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}}""");
        var e = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(path));
        Assert.Contains("model.merges[0]", e.Message);
    }

    [Fact]
    public void MissingFileAndFolderWithoutTokenizer()
    {
        var missing = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(Path.Combine(_folder, "nope.json")));
        Assert.Contains("nope.json", missing.Message);
        var folder = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(_folder));
        Assert.Contains("holds no tokenizer.json", folder.Message);
    }

    [Fact]
    public void FolderHoldingATokenizerLoads()
    {
        Write(File.ReadAllText(FixturePaths.Tokenizer("tiny_bpe_tokenizer.json")));
        Assert.Equal(2003, TokenizerLoader.Load(_folder).VocabularyCount);
    }
}
