using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

public sealed class ByteTokenizerTests
{
    [Fact]
    public void IdsAreUtf8BytesWithSpecialsAfter()
    {
        var tokenizer = (ByteTokenizer)TokenizerLoader.Load("byte");
        // "aé😀" = 61 | C3 A9 | F0 9F 98 80
        Assert.Equal([256, 0x61, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80], tokenizer.Encode("aé😀", addSpecialTokens: true));
        Assert.Equal(259, tokenizer.VocabularyCount);
        Assert.Equal("aé😀<eos>", tokenizer.Decode([0x61, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 257]));
        Assert.Equal("aé😀", tokenizer.Decode([256, 0x61, 0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80, 257], skipSpecialTokens: true));
        Assert.Equal("<eos>"u8.Length, tokenizer.Encode("<eos>").Length); // specials are never matched in text
    }
}
