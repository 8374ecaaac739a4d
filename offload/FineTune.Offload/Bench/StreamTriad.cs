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
/// </summary>
public static unsafe class StreamTriad
{
    /// <summary>Best bandwidth in bytes per second over <paramref name="repeats"/> passes of <paramref name="elementCount"/> elements.</summary>
    public static double MeasureBytesPerSecond(long elementCount = 64L << 20, int repeats = 5)
    {
        var a = (float*)NativeMemory.AlignedAlloc((nuint)(elementCount * 4), 4096);
        var b = (float*)NativeMemory.AlignedAlloc((nuint)(elementCount * 4), 4096);
        var c = (float*)NativeMemory.AlignedAlloc((nuint)(elementCount * 4), 4096);
        try
        {
            const long chunk = 1 << 16;
            long chunks = (elementCount + chunk - 1) / chunk;
            // First touch on the worker threads, as the pass itself will touch them.
            Parallel.For(0, chunks, k =>
            {
                long end = Math.Min(elementCount, (k + 1) * chunk);
                for (long i = k * chunk; i < end; i++)
                {
                    a[i] = 0;
                    b[i] = 1;
                    c[i] = 2;
                }
            });
            double best = 0;
            for (int r = 0; r < repeats; r++)
            {
                long start = Stopwatch.GetTimestamp();
                Parallel.For(0, chunks, k => Triad(a, b, c, 3f, k * chunk, Math.Min(elementCount, (k + 1) * chunk)));
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                best = Math.Max(best, 16.0 * elementCount / seconds);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
            NativeMemory.AlignedFree(c);
        }
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
}
