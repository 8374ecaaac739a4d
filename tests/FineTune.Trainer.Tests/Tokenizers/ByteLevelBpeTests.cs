using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>
/// Byte-level BPE on the real tokenizer.json files of Fixtures/tokenizers. Expected ids come from
/// Fixtures/tokenizers/reference_bpe.py (an independent Python BPE using the `regex` module); the command that
/// produced each list is written above it.
/// </summary>
public sealed class ByteLevelBpeTests
{
    private static readonly Lazy<ITokenizer> s_llama3Style = new(() => TokenizerLoader.Load(FixturePaths.Tokenizer("tokenizer.json")));
    private static readonly Lazy<ITokenizer> s_qwen2Style = new(() => TokenizerLoader.Load(FixturePaths.Tokenizer("tiny_bpe_tokenizer.json")));

    private const string SunText = "I can see the sun. But even if I cannot see the sun, I know that it exists.";

    [Fact]
    public void KnownEncodingOfTheFixturesReadme()
    {
        // Fixtures/README.md: 25 ids beginning 73, 503, 654, 262, 376, 110, 46; the rest from reference_bpe.py.
        int[] expected = [73, 503, 654, 262, 376, 110, 46, 690, 720, 428, 270, 1119, 654, 262, 376, 110, 44, 270, 686, 334, 312, 522, 511, 115, 46];
        int[] ids = s_llama3Style.Value.Encode(SunText);
        Assert.Equal(expected, ids);
        Assert.Equal(SunText, s_llama3Style.Value.Decode(ids));
    }

    [Theory]
    // python3 reference_bpe.py tokenizer.json 'cafe\u0301 \t\t  x   y\n\n'
    [InlineData("cafe\u0301 \t\t  x   y\n\n", new[] { 99, 97, 800, 204, 129, 32, 9, 9, 32, 32, 120, 609, 325, 10, 10 })]
    // python3 reference_bpe.py tokenizer.json 'emoji \U0001F600\U0001F44D\U0001F3FD \u4e2d\u6587 \U00020000\U0002A6D6x 12345'
    [InlineData("emoji \U0001F600\U0001F44D\U0001F3FD \u4e2d\u6587 \U00020000\U0002A6D6x 12345",
        new[] { 398, 111, 106, 105, 32, 240, 159, 152, 128, 240, 159, 145, 141, 240, 159, 143, 189, 32, 228, 184, 173, 230, 150, 135, 32, 240, 160, 128, 128, 240, 170, 155, 150, 120, 32, 49, 50, 51, 52, 53 })]
    // python3 reference_bpe.py tokenizer.json "Hello world, it's 2024! I'M here.\r\n\r\n  done"
    [InlineData("Hello world, it's 2024! I'M here.\r\n\r\n  done", new[] { 72, 381, 111, 441, 307, 44, 312, 475, 32, 50, 48, 50, 52, 33, 270, 39, 77, 812, 46, 13, 10, 13, 10, 32, 1253 })]
    // python3 reference_bpe.py tokenizer.json 'na\u00efve caf\u00e9 \u00c5ngstr\u00f6m e\u0301\u0300 \u0915\u094d\u0937 \u0645\u0631\u062d\u0628\u0627'
    [InlineData("na\u00efve caf\u00e9 \u00c5ngstr\u00f6m e\u0301\u0300 \u0915\u094d\u0937 \u0645\u0631\u062d\u0628\u0627",
        new[] { 956, 195, 175, 320, 282, 97, 102, 195, 169, 32, 195, 133, 816, 1160, 195, 182, 109, 324, 204, 129, 204, 128, 32, 224, 164, 149, 224, 165, 141, 224, 164, 183, 32, 217, 133, 216, 177, 216, 173, 216, 168, 216, 167 })]
    // Astral letter and digit (U+1D400 Lu, U+1D7CE Nd) must split like Rust: python3 reference_bpe.py tokenizer.json 'x\U0001D400\U0001D7CE y'
    [InlineData("x\U0001D400\U0001D7CE y", new[] { 120, 240, 157, 144, 128, 240, 157, 159, 142, 325 })]
    public void ArrayMergesMatchTheReferenceAndRoundTrip(string text, int[] expected)
    {
        int[] ids = s_llama3Style.Value.Encode(text);
        Assert.Equal(expected, ids);
        Assert.Equal(text, s_llama3Style.Value.Decode(ids));
    }

    [Theory]
    // python3 reference_bpe.py tiny_bpe_tokenizer.json "Hello world, it's 2024! I'M here.\r\n\r\n  done"
    [InlineData("Hello world, it's 2024! I'M here.\r\n\r\n  done", new[] { 39, 385, 78, 675, 11, 209, 300, 95, 17, 15, 17, 19, 0, 223, 6, 44, 207, 101, 13, 94, 94, 95, 136, 422 })]
    // python3 reference_bpe.py tiny_bpe_tokenizer.json 'a  b\t\tc\n\n\nd   '
    [InlineData("a  b\t\tc\n\n\nd   ", new[] { 64, 95, 127, 66, 94, 94, 94, 67, 115 })]
    public void StringMergesMatchTheReferenceAndRoundTrip(string text, int[] expected)
    {
        int[] ids = s_qwen2Style.Value.Encode(text);
        Assert.Equal(expected, ids);
        // The tiny vocabulary lacks the byte tokens of '\t' and '\r' (160 of 256 bytes), which are dropped as
        // huggingface/tokenizers drops them; everything else round-trips.
        Assert.Equal(text.Replace("\t", "").Replace("\r", ""), s_qwen2Style.Value.Decode(ids));
    }

    [Fact]
    public void AddedTokensAreMatchedBeforeBpe()
    {
        // python3 reference_bpe.py tiny_bpe_tokenizer.json "<|im_start|>user\nHello world, it's 2024!<|im_end|>\n"
        const string text = "<|im_start|>user\nHello world, it's 2024!<|im_end|>\n";
        int[] expected = [2001, 273, 105, 94, 39, 385, 78, 675, 11, 209, 300, 95, 17, 15, 17, 19, 0, 2002, 94];
        ITokenizer tokenizer = s_qwen2Style.Value;
        int[] ids = tokenizer.Encode(text);
        Assert.Equal(expected, ids);
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.Equal("user\nHello world, it's 2024!\n", tokenizer.Decode(ids, skipSpecialTokens: true));
        Assert.Equal(2003, tokenizer.VocabularyCount);
        Assert.Equal(2000, tokenizer.EosId); // <|endoftext|>
    }

    [Fact]
    public void AdjacentAddedTokensAndDigitsSplitOneByOne()
    {
        // python3 reference_bpe.py tiny_bpe_tokenizer.json '<|endoftext|><|im_start|>assistant\nThe answer is 42.<|im_end|>'
        int[] expected = [2000, 2001, 397, 251, 249, 94, 298, 194, 82, 86, 105, 156, 95, 19, 17, 13, 2002];
        Assert.Equal(expected, s_qwen2Style.Value.Encode("<|endoftext|><|im_start|>assistant\nThe answer is 42.<|im_end|>"));
    }

    [Fact]
    public void NfcNormalizerMakesComposedAndDecomposedTextEqual()
    {
        // The tiny vocabulary lacks the bytes of 'é' (so HF drops them), but both spellings must give the same ids.
        Assert.Equal(s_qwen2Style.Value.Encode("caf\u00e9 ok"), s_qwen2Style.Value.Encode("cafe\u0301 ok"));
        Assert.NotEqual(s_llama3Style.Value.Encode("caf\u00e9"), s_llama3Style.Value.Encode("cafe\u0301"));
    }

    [Fact]
    public void RandomUnicodeTextRoundTrips()
    {
        // Every string of emoji (with skin tones and ZWJ), CJK (also Extension B), combining accents, newlines,
        // runs of spaces and tabs decodes back exactly: the Llama-3 fixture holds all 256 byte tokens.
        string[] pool = ["a", "Z", "é", "e\u0301", "\u0300", " ", "  ", "\t", "\n", "\r\n", "中", "文", "\U00020000",
            "\U0002A6D6", "😀", "👍🏽", "👨\u200D👩\u200D👧", "'s", "'LL", "123", "4", "!", "...", "ß", "Ω", "\u00A0", "ﬁ", "🇫🇷"];
        var random = new FineTune.Trainer.Data.SplitMix64(7);
        for (int sample = 0; sample < 300; sample++)
        {
            var text = new System.Text.StringBuilder();
            int count = 1 + (int)random.NextBelow(24);
            for (int i = 0; i < count; i++)
                text.Append(pool[random.NextBelow((ulong)pool.Length)]);
            string s = text.ToString();
            Assert.Equal(s, s_llama3Style.Value.Decode(s_llama3Style.Value.Encode(s)));
        }
    }

    [Theory]
    [InlineData("tokenizer.json")]
    [InlineData("tiny_bpe_tokenizer.json")]
    public void SixtyRandomStringsMatchTheReference(string name)
    {
        // Fixtures/tokenizers/reference_ids.json, written by make_reference_ids.py with reference_bpe.py.
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllText(FixturePaths.Tokenizer("reference_ids.json")));
        ITokenizer tokenizer = name == "tokenizer.json" ? s_llama3Style.Value : s_qwen2Style.Value;
        int count = 0;
        foreach (var entry in document.RootElement.GetProperty(name).EnumerateArray())
        {
            string text = entry.GetProperty("text").GetString()!;
            int[] expected = entry.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.True(expected.SequenceEqual(tokenizer.Encode(text)), $"ids differ for {System.Text.Json.JsonSerializer.Serialize(text)}");
            count++;
        }
        Assert.Equal(60, count);
    }

    [Fact]
    public void DecodeOfGarbageBytesGivesReplacementCharacters()
    {
        // This vocabulary is in byte order (id 97 = "a"); id 240 is byte 0xF0 alone: an incomplete UTF-8 sequence decodes to U+FFFD rather than throwing.
        Assert.Equal("a\uFFFD", s_llama3Style.Value.Decode([97, 240]));
    }
}
