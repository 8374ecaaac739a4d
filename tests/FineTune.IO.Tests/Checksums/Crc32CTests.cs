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
        Assert.Equal(expected, Bitwise(data));
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
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(768)]
    [InlineData(3 * 8192 + 3 * 256 + 13)]
    [InlineData(1 << 20)]
    public void LibraryAndCombineAgreeWithAnIndependentBitwiseReference(int byteCount)
    {
        // System.IO.Hashing hashes, Combine continues; both against the bit-at-a-time definition
        byte[] data = new byte[byteCount];
        new Random(byteCount).NextBytes(data);
        Assert.Equal(Bitwise(data), Crc32C.Compute(data));
        int split = byteCount / 3;
        Assert.Equal(Bitwise(data), Crc32C.Combine(Crc32C.Compute(data.AsSpan(0, split)), Crc32C.Compute(data.AsSpan(split)), byteCount - split));
    }

    [Fact]
    public void RandomLengthsAndSplitsAgreeWithTheTable()
    {
        var random = new Random(42);
        for (int trial = 0; trial < 60; trial++)
        {
            byte[] data = new byte[random.Next(0, 100_000)];
            random.NextBytes(data);
            uint expected = Bitwise(data);
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

    /// <summary>CRC-32C by its definition, one bit at a time (reflected polynomial 0x82F63B78, init and final xor all ones).</summary>
    private static uint Bitwise(ReadOnlySpan<byte> data)
    {
        uint state = ~0u;
        foreach (byte b in data)
        {
            state ^= b;
            for (int bit = 0; bit < 8; bit++)
                state = (state & 1) != 0 ? (state >> 1) ^ 0x82F63B78u : state >> 1;
        }
        return ~state;
    }
}
