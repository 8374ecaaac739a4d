using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FineTune.Offload.Bench;

/// <summary>
/// STREAM's triad, a[i] = b[i] + s * c[i], over float arrays far larger than the caches, on all cores: the
/// memory bandwidth a streaming kernel can reach on this machine right now. reference: J. McCalpin, STREAM, "Triad".
/// Counts the bytes the memory bus really moves: 16 per element (b and c read, a written, and a read first because
/// an ordinary store to a line not in cache fetches it: write-allocate). STREAM itself reports 12, which understates
/// the bandwidth by 4/3 and would let any kernel that updates in place (as AdamW does) beat its "bound".
/// An instance keeps its arrays so passes can be interleaved with the kernel being judged (shared machines vary).
/// </summary>
public sealed unsafe class StreamTriad : IDisposable
{
    private const long ChunkElementCount = 1 << 16;
    private readonly long _elementCount;
    private float* _a;
    private float* _b;
    private float* _c;

    public StreamTriad(long elementCount = 64L << 20)
    {
        _elementCount = elementCount;
        _a = (float*)NativeMemory.AlignedAlloc((nuint)(elementCount * 4), 4096);
        _b = (float*)NativeMemory.AlignedAlloc((nuint)(elementCount * 4), 4096);
        _c = (float*)NativeMemory.AlignedAlloc((nuint)(elementCount * 4), 4096);
        float* a = _a, b = _b, c = _c;
        // First touch on the worker threads, as the passes will touch them.
        Parallel.For(0, Chunks, k =>
        {
            long end = Math.Min(elementCount, (k + 1) * ChunkElementCount);
            for (long i = k * ChunkElementCount; i < end; i++)
            {
                a[i] = 0;
                b[i] = 1;
                c[i] = 2;
            }
        });
    }

    private long Chunks => (_elementCount + ChunkElementCount - 1) / ChunkElementCount;

    /// <summary>Bytes per second of one pass.</summary>
    public double MeasureOnce()
    {
        float* a = _a, b = _b, c = _c;
        long n = _elementCount;
        long start = Stopwatch.GetTimestamp();
        Parallel.For(0, Chunks, k => Triad(a, b, c, 3f, k * ChunkElementCount, Math.Min(n, (k + 1) * ChunkElementCount)));
        return 16.0 * n / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>Best bandwidth over <paramref name="repeats"/> passes.</summary>
    public static double MeasureBytesPerSecond(long elementCount = 64L << 20, int repeats = 5)
    {
        using var triad = new StreamTriad(elementCount);
        double best = 0;
        for (int r = 0; r < repeats; r++)
            best = Math.Max(best, triad.MeasureOnce());
        return best;
    }

    private static void Triad(float* a, float* b, float* c, float scalar, long begin, long end)
    {
        long i = begin;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s = Vector512.Create(scalar);
            for (; i + 16 <= end; i += 16)
                Vector512.FusedMultiplyAdd(s, Vector512.Load(c + i), Vector512.Load(b + i)).Store(a + i);
        }
        for (; i < end; i++)
            a[i] = b[i] + scalar * c[i];
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_c);
        _a = _b = _c = null;
    }
}
