using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>
/// BPE model options on hand-made vocabularies (no fixture vocabulary exercises them): ignore_merges, the legacy
/// "#version" merges header, and array merges whose tokens contain spaces (impossible in the "a b" form).
/// </summary>
public sealed class BpeOptionsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("finetune-bpeopt-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private ITokenizer Load(string model)
    {
        string path = Path.Combine(_folder, $"t{Directory.GetFiles(_folder).Length}.json");
        File.WriteAllText(path, $$"""{"model": {{model}}}""");
        return TokenizerLoader.Load(path);
    }

    [Theory]
    [InlineData(false, new[] { 0, 3 })] // a + (b c): "abc" has no merge path, so two tokens
    [InlineData(true, new[] { 5 })]     // the whole piece is in the vocab: one token, merges not applied
    public void IgnoreMergesTakesWholePiecesFromTheVocabulary(bool ignoreMerges, int[] expected)
    {
        ITokenizer tokenizer = Load($$"""
            {"type": "BPE", "ignore_merges": {{(ignoreMerges ? "true" : "false")}},
             "vocab": {"a": 0, "b": 1, "c": 2, "bc": 3, "ab": 4, "abc": 5}, "merges": ["#version: 0.2", "b c", "a b"]}
            """);
        Assert.Equal(expected, tokenizer.Encode("abc"));
        Assert.Equal("abc", tokenizer.Decode(expected));
    }

    [Fact]
    public void MergeRankDecidesBetweenOverlappingPairs()
    {
        // "abc" with merges [b c] (rank 0) before [a b] (rank 1): bc wins although ab is further left.
        ITokenizer tokenizer = Load("""{"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "bc": 3, "ab": 4}, "merges": [["b", "c"], ["a", "b"]]}""");
        Assert.Equal([0, 3], tokenizer.Encode("abc"));
        ITokenizer swapped = Load("""{"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "bc": 3, "ab": 4}, "merges": [["a", "b"], ["b", "c"]]}""");
        Assert.Equal([4, 2], swapped.Encode("abc"));
    }

    [Fact]
    public void ArrayMergesMayHoldSpaces()
    {
        ITokenizer tokenizer = Load("""{"type": "BPE", "vocab": {"a": 0, " ": 1, "a ": 2, "a a": 3}, "merges": [["a", " "], ["a ", "a"]]}""");
        Assert.Equal([3], tokenizer.Encode("a a"));       // a+" " (rank 0), then "a "+a (rank 1)
        Assert.Equal([2, 2], tokenizer.Encode("a a "));   // a+" " twice; "a "+"a " has no merge
    }
}
