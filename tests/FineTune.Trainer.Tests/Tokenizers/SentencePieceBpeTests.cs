using System.Text.Json;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>
/// SentencePiece-style BPE as Llama 2 / TinyLlama ship it in tokenizer.json (FORMATS.md 3.4): &lt;unk&gt;, &lt;s&gt;,
/// &lt;/s&gt; at ids 0-2, byte pieces &lt;0x00&gt;..&lt;0xFF&gt; at ids 3-258, '▁' for spaces, byte fallback.
/// The tokenizer is built here; every expected id list is worked out by hand in the comments.
/// </summary>
public sealed class SentencePieceBpeTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("finetune-spm-").FullName;

    // ids 259.. : ▁ h e l l o ... and the merged pieces, in the order written here.
    private static readonly string[] s_pieces = ["▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "ll", "▁he", "llo", "▁hello", "▁w", "or"];
    private static readonly string[][] s_merges = [["▁", "h"], ["l", "l"], ["▁h", "e"], ["ll", "o"], ["▁he", "llo"], ["▁", "w"], ["o", "r"]];

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static int Id(string piece) => 259 + Array.IndexOf(s_pieces, piece);

    private string Write(bool legacyNormalizer, bool byteFallback = true, string prependScheme = "first")
    {
        var vocab = new Dictionary<string, int> { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++)
            vocab[$"<0x{b:X2}>"] = 3 + b;
        foreach (string piece in s_pieces)
            vocab[piece] = Id(piece);
        object special(int id, string content) => new { id, content, single_word = false, lstrip = false, rstrip = false, normalized = false, special = true };
        object? normalizer = legacyNormalizer
            ? new { type = "Sequence", normalizers = new object[] { new { type = "Prepend", prepend = "▁" }, new { type = "Replace", pattern = new { String = " " }, content = "▁" } } }
            : null;
        object? preTokenizer = legacyNormalizer ? null : new { type = "Metaspace", replacement = "▁", prepend_scheme = prependScheme, split = false };
        object decoder = legacyNormalizer
            ? new { type = "Sequence", decoders = new object[] { new { type = "Replace", pattern = new { String = "▁" }, content = " " }, new { type = "ByteFallback" }, new { type = "Fuse" }, new { type = "Strip", content = " ", start = 1, stop = 0 } } }
            : new { type = "Metaspace", replacement = "▁", prepend_scheme = prependScheme, split = false };
        var json = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new[] { special(0, "<unk>"), special(1, "<s>"), special(2, "</s>") },
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = new { type = "TemplateProcessing", single = new object[] { new { SpecialToken = new { id = "<s>", type_id = 0 } }, new { Sequence = new { id = "A", type_id = 0 } } }, special_tokens = new Dictionary<string, object> { ["<s>"] = new { id = "<s>", ids = new[] { 1 }, tokens = new[] { "<s>" } } } },
            ["decoder"] = decoder,
            ["model"] = new { type = "BPE", dropout = (object?)null, unk_token = "<unk>", fuse_unk = true, byte_fallback = byteFallback, ignore_merges = false, vocab, merges = s_merges },
        };
        string path = Path.Combine(_folder, $"tokenizer-{legacyNormalizer}-{byteFallback}-{prependScheme}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MergesFollowRankOrder(bool legacyNormalizer)
    {
        ITokenizer tokenizer = TokenizerLoader.Load(Write(legacyNormalizer));
        // "hello world" -> "▁hello▁world" -> chars ▁ h e l l o ▁ w o r l d; merges by rank: ▁h, ll, ▁he, llo,
        // ▁hello, ▁w, or -> ▁hello ▁w or l d.
        int[] expected = [Id("▁hello"), Id("▁w"), Id("or"), Id("l"), Id("d")];
        Assert.Equal(expected, tokenizer.Encode("hello world"));
        Assert.Equal([1, .. expected], tokenizer.Encode("hello world", addSpecialTokens: true));
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Equal("hello world", tokenizer.Decode(tokenizer.Encode("hello world", addSpecialTokens: true), skipSpecialTokens: true));
    }

    [Fact]
    public void ByteFallbackEncodesMissingCharactersAsUtf8Bytes()
    {
        ITokenizer tokenizer = TokenizerLoader.Load(Write(legacyNormalizer: true));
        // "hi 😀" -> "▁hi▁😀": 'i' (0x69) and 😀 (F0 9F 98 80) are not pieces, so they become <0xHH> = 3 + byte.
        int[] expected = [Id("▁h"), 3 + 0x69, Id("▁"), 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80];
        int[] ids = tokenizer.Encode("hi 😀");
        Assert.Equal(expected, ids);
        // Decoder: ▁ -> ' ', byte runs -> UTF-8, fuse, strip one leading space.
        Assert.Equal("hi 😀", tokenizer.Decode(ids));
        Assert.Equal("hi 😀\n\t 中", tokenizer.Decode(tokenizer.Encode("hi 😀\n\t 中")));
    }

    [Fact]
    public void WithoutByteFallbackUnknownCharactersFuseIntoOneUnk()
    {
        ITokenizer tokenizer = TokenizerLoader.Load(Write(legacyNormalizer: true, byteFallback: false));
        // "hqqe" -> "▁hqqe": ▁ h <unk> <unk> e -> fuse_unk keeps one <unk>; ▁h merges; e stays.
        Assert.Equal([Id("▁h"), 0, Id("e")], tokenizer.Encode("hqqe"));
    }

    [Fact]
    public void LegacyNormalizerPrependsAfterEverySpecialTokenWhileMetaspaceFirstDoesNot()
    {
        // Legacy Prepend applies to every text segment between added tokens (the known Llama 2 quirk);
        // Metaspace prepend_scheme "first" only to the segment at the start of the input.
        ITokenizer legacy = TokenizerLoader.Load(Write(legacyNormalizer: true));
        ITokenizer metaspace = TokenizerLoader.Load(Write(legacyNormalizer: false));
        Assert.Equal([Id("▁hello"), 2, Id("▁hello")], legacy.Encode("hello</s>hello"));
        Assert.Equal([Id("▁hello"), 2, Id("h"), Id("e"), Id("llo")], metaspace.Encode("hello</s>hello"));
    }

    [Fact]
    public void MetaspaceNeverDoesNotPrepend()
    {
        ITokenizer tokenizer = TokenizerLoader.Load(Write(legacyNormalizer: false, prependScheme: "never"));
        Assert.Equal([Id("h"), Id("e"), Id("llo"), Id("▁w"), Id("or"), Id("l"), Id("d")], tokenizer.Encode("hello world"));
        Assert.Equal("hello world", tokenizer.Decode(tokenizer.Encode("hello world")));
    }
}
