using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Parameters;

namespace FineTune.Offload.Tests.Parameters;

/// <summary>
/// Known bf16 contents for weight-file tests: element e holds <see cref="Bits"/>(e, seed), a value that differs
/// between neighbours and between seeds, so a read from the wrong page, offset or generation shows.
/// </summary>
internal static unsafe class WeightPattern
{
    public static ushort Bits(long element, int seed) => (ushort)((element * 40503 + seed * 7919 + 12345) & 0xFFFF);

    /// <summary>Writes the pattern of <paramref name="seed"/> into the whole file, one write per run of pages.</summary>
    public static void Fill(WeightFile file, int seed, long elementsPerWrite = 4096)
    {
        if (file.ElementType != ElementType.BFloat16)
            throw new InvalidOperationException("WeightPattern works on bf16 files.");
        for (long first = 0; first < file.ElementCount; first += elementsPerWrite)
            Write(file, first, Math.Min(elementsPerWrite, file.ElementCount - first), seed);
    }

    /// <summary>Writes elements [first, first + count) with the pattern of <paramref name="seed"/>.</summary>
    public static void Write(WeightFile file, long first, long count, int seed)
    {
        using var buffer = new AlignedBuffer(AlignedBuffer.RoundUpToSector(count * 2));
        var elements = (ushort*)buffer.Pointer;
        for (long k = 0; k < count; k++)
            elements[k] = Bits(first + k, seed);
        file.WriteAsync(first, count, buffer).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Writes <paramref name="bytes"/> (the whole file's contents, any element type) in one write.</summary>
    public static void WriteBytes(WeightFile file, byte[] bytes)
    {
        using var buffer = new AlignedBuffer(AlignedBuffer.RoundUpToSector(bytes.Length));
        bytes.CopyTo(buffer.GetSpan(0, bytes.Length));
        file.WriteAsync(0, file.ElementCount, buffer).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>The index of the first element in [first, first + count) at <paramref name="pointer"/> that does not hold the pattern, else -1.</summary>
    public static long FirstMismatch(nint pointer, long first, long count, int seed)
    {
        var elements = (ushort*)pointer;
        for (long k = 0; k < count; k++)
            if (elements[k] != Bits(first + k, seed))
                return first + k;
        return -1;
    }

    /// <summary>The whole file's bytes (ElementCount * ElementByteCount of them).</summary>
    public static byte[] ReadAll(WeightFile file)
    {
        using var buffer = new AlignedBuffer(file.Window(0, file.ElementCount).ByteCount);
        long offset = file.ReadAsync(0, file.ElementCount, buffer).AsTask().GetAwaiter().GetResult();
        return buffer.GetSpan(offset, checked((int)(file.ElementCount * file.ElementByteCount))).ToArray();
    }
}
