using System.Text;
using FineTune.IO;
using Xunit;

namespace FineTune.IO.Tests.Checksums;

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

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(767)]
    [InlineData(768)]
    [InlineData(769)]
    [InlineData(3 * 8192 - 1)]
    [InlineData(3 * 8192)]
    [InlineData(3 * 8192 + 3 * 256 + 13)]
    [InlineData(1 << 20)]
    public void InterleavedHardwarePathEqualsTheTableAtLaneBoundaries(int byteCount)
    {
        byte[] data = new byte[byteCount + 3];
        new Random(byteCount).NextBytes(data);
        for (int misalignment = 0; misalignment < 3; misalignment++)
        {
            ReadOnlySpan<byte> span = data.AsSpan(misalignment, byteCount);
            uint seed = 0x12345678u;
            Assert.Equal(Crc32C.UpdateTable(seed, span), Crc32C.UpdateHardware(seed, span));
        }
    }

    [Fact]
    public void RandomLengthsAndSplitsAgreeWithTheTable()
    {
        var random = new Random(42);
        for (int trial = 0; trial < 60; trial++)
        {
            byte[] data = new byte[random.Next(0, 100_000)];
            random.NextBytes(data);
            uint expected = ~Crc32C.UpdateTable(~0u, data);
            Assert.Equal(expected, Crc32C.Compute(data));
            int split = random.Next(0, data.Length + 1);
            Assert.Equal(expected, Crc32C.Append(Crc32C.Compute(data.AsSpan(0, split)), data.AsSpan(split)));
        }
    }

    [Fact]
    public void MegabyteOfZerosMatchesAnIndependentValue()
    {
        // Reference: a separate Python byte-table CRC-32C (checked on "123456789" = 0xE3069283) over bytes(1 << 20).
        Assert.Equal(ExpectedZerosCrc, Crc32C.Compute(new byte[1 << 20]));
    }

    private const uint ExpectedZerosCrc = 0x14298C12u;
}
