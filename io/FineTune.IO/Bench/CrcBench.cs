using FineTune.IO.Native;
using System.Runtime.Intrinsics;

namespace FineTune.IO.Bench;

/// <summary>
/// CRC32C bytes per second on one core against the same core's memory read bandwidth, measured as a vectorized
/// streaming sum over the same buffer (a checksum cannot be faster than reading its input). Best of several passes.
/// Time is the measuring thread's CPU time (clock_gettime THREAD_CPUTIME), so "one core" means one core even when
/// other processes share the machine; wall-clock figures would mostly measure the scheduler.
/// </summary>
public static unsafe class CrcBench
{
    public static CrcBenchResult Run(long bufferByteCount, int passCount = 5)
    {
        using var buffer = new AlignedBuffer(bufferByteCount);
        new Random(1).NextBytes(new Span<byte>(buffer.Pointer, checked((int)Math.Min(bufferByteCount, int.MaxValue))));
        var data = new ReadOnlySpan<byte>(buffer.Pointer, checked((int)bufferByteCount));

        double bestCrc = 0, bestSum = 0;
        uint crcSink = 0;
        ulong sumSink = 0;
        for (int pass = 0; pass < passCount; pass++)
        {
            double start = LibC.ThreadCpuSeconds();
            sumSink ^= StreamingSum(buffer.Pointer, bufferByteCount);
            bestSum = Math.Max(bestSum, bufferByteCount / (LibC.ThreadCpuSeconds() - start));

            start = LibC.ThreadCpuSeconds();
            crcSink ^= Crc32C.Compute(data);
            bestCrc = Math.Max(bestCrc, bufferByteCount / (LibC.ThreadCpuSeconds() - start));
        }
        GC.KeepAlive(crcSink);
        GC.KeepAlive(sumSink);
        return new CrcBenchResult(bufferByteCount, bestCrc, bestSum, "System.IO.Hashing Crc32, Crc32C parameter set");
    }

    /// <summary>Sum of all 64-bit words with four independent vector accumulators (memory-bound, not add-bound).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static ulong StreamingSum(byte* pointer, long byteCount)
    {
        int width = Vector256<ulong>.Count * sizeof(ulong); // 32 bytes
        Vector256<ulong> a = Vector256<ulong>.Zero, b = a, c = a, d = a;
        long index = 0;
        for (; index + 4 * width <= byteCount; index += 4 * width)
        {
            a += Vector256.Load((ulong*)(pointer + index));
            b += Vector256.Load((ulong*)(pointer + index + width));
            c += Vector256.Load((ulong*)(pointer + index + 2 * width));
            d += Vector256.Load((ulong*)(pointer + index + 3 * width));
        }
        ulong sum = Vector256.Sum(a + b + c + d);
        for (; index < byteCount; index++)
            sum += pointer[index];
        return sum;
    }
}
