using System.Text;
using FineTune.IO;
using Xunit;

namespace FineTune.IO.Tests;

public class Crc32CTests
{
    [Theory]
    [InlineData("123456789", 0xE3069283u)]
    [InlineData("abcd", 0x92c80a31u)]
    [InlineData("", 0u)]
    public void MatchesStandardVectors(string text, uint expected)
    {
        byte[] data = Encoding.ASCII.GetBytes(text);
        Assert.Equal(expected, Crc32C.Compute(data));
        Assert.Equal(expected, ~Crc32C.UpdateTable(~0u, data));
    }

    [Fact]
    public void MaskedValuesMatchTensorBoardVectors()
    {
        Assert.Equal(0x5794d08au, Crc32C.Mask(Crc32C.Compute(Encoding.ASCII.GetBytes("\x1a\x11" + "CRC test, one two"))));
        Assert.Equal(0x0fd7fffau, Crc32C.Mask(Crc32C.Compute(new byte[32])));
        Assert.Equal(0x8a9136aau, Crc32C.Unmask(0x0fd7fffau));
    }

    [Fact]
    public void AppendEqualsWholeForAnySplit()
    {
        var random = new Random(7);
        byte[] data = new byte[1000];
        random.NextBytes(data);
        uint whole = Crc32C.Compute(data);
        for (int split = 0; split <= data.Length; split += 37)
            Assert.Equal(whole, Crc32C.Append(Crc32C.Compute(data.AsSpan(0, split)), data.AsSpan(split)));
    }
}
