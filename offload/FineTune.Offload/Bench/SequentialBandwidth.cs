using System.Diagnostics;
using FineTune.IO;

namespace FineTune.Offload.Bench;

/// <summary>
/// fio-style sequential O_DIRECT bandwidth of the drive holding a directory, measured through the same io engine
/// and queue depth the swap uses: one preallocated file written front to back in 64 MiB requests (split by the
/// engine into 1 MiB submissions at the queue depth), then read back the same way. The file is deleted afterwards.
/// </summary>
public static class SequentialBandwidth
{
    private const long RequestByteCount = 64L << 20;

    public static (double ReadBytesPerSecond, double WriteBytesPerSecond, string Engine) Measure(string directory, long byteCount,
        IoEngineKind engineKind = IoEngineKind.Auto, int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        byteCount = Math.Max(RequestByteCount, byteCount / RequestByteCount * RequestByteCount);
        string path = Path.Combine(directory, $"finetune-bandwidth-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            using var buffer = new AlignedBuffer(RequestByteCount);
            new Random(1).NextBytes(buffer.Span);
            using IIoEngine engine = IoEngineFactory.Create(engineKind, queueDepth);
            using DirectFile file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
            file.Preallocate(byteCount);
            long start = Stopwatch.GetTimestamp();
            RunAll(byteCount, offset => engine.WriteAsync(file, offset, buffer, 0, RequestByteCount));
            file.Fsync();
            double write = byteCount / Stopwatch.GetElapsedTime(start).TotalSeconds;
            start = Stopwatch.GetTimestamp();
            RunAll(byteCount, offset => engine.ReadAsync(file, offset, buffer, 0, RequestByteCount));
            double read = byteCount / Stopwatch.GetElapsedTime(start).TotalSeconds;
            return (read, write, engine.Name + (file.IsDirect ? ", O_DIRECT" : ", buffered"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// The drive's rate for a step's traffic as the engine moves it (the rate a run's plan and its I/O floor use): a
    /// swap round over one scratch file of <paramref name="sampleByteCount"/> bytes' worth of extents, written first
    /// (untimed). Each extent is read while the one before it is written back in place, through a ring of four
    /// buffers on separate read and write queues, as <c>SwapPipeline</c> streams states; extents are written back in
    /// the step's proportion of <paramref name="writeByteCount"/> to <paramref name="readByteCount"/> (the rest are
    /// read only, as weights are). On some drives this pattern runs well above fio's flat-out rw mix from one file
    /// into another (half as fast on the development VM); a floor must not be beaten by the engine it bounds, so this
    /// is the one used. Returns the combined bytes per second, and the CPU time the process spent per byte meanwhile
    /// (the kernel's share of direct I/O, which comes out of the cores the compute uses).
    /// </summary>
    public static (double BytesPerSecond, double CpuSecondsPerByte, string Engine) MeasureAtMix(string directory, long readByteCount, long writeByteCount, long sampleByteCount,
        long extentByteCount = 48L << 20)
    {
        const int bufferCount = 4;
        extentByteCount = Math.Clamp(extentByteCount / 4096 * 4096, 1L << 20, RequestByteCount);
        double writeShare = readByteCount > 0 ? Math.Min(1, writeByteCount / (double)readByteCount) : 1;
        int extents = (int)Math.Max(bufferCount, sampleByteCount / (1 + writeShare) / extentByteCount);
        string path = Path.Combine(directory, $"finetune-bandwidth-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        var buffers = new AlignedBuffer[bufferCount];
        try
        {
            for (int b = 0; b < bufferCount; b++)
            {
                buffers[b] = new AlignedBuffer(extentByteCount);
                new Random(b + 1).NextBytes(buffers[b].Span);
            }
            using IIoEngine reads = IoEngineFactory.Create(IoEngineKind.Auto, IoEngineFactory.DefaultQueueDepth);
            using IIoEngine writes = IoEngineFactory.Create(IoEngineKind.Auto, IoEngineFactory.DefaultQueueDepth);
            using DirectFile file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
            file.Preallocate(extents * extentByteCount);
            for (int k = 0; k < extents; k++)
                writes.WriteAsync(file, k * extentByteCount, buffers[0], 0, extentByteCount).AsTask().GetAwaiter().GetResult();
            file.Fsync();
            TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            long start = Stopwatch.GetTimestamp(), moved = 0, written = 0;
            var pending = new Task?[bufferCount];    // the last request on each buffer
            Task ReadInto(int extent)
            {
                int b = extent % bufferCount;
                pending[b]?.GetAwaiter().GetResult();
                return pending[b] = reads.ReadAsync(file, extent * extentByteCount, buffers[b], 0, extentByteCount).AsTask();
            }
            Task next = ReadInto(0);
            for (int k = 0; k < extents; k++)
            {
                next.GetAwaiter().GetResult();
                moved += extentByteCount;
                if (k + 1 < extents)
                    next = ReadInto(k + 1);
                if (written + extentByteCount <= (k + 1) * extentByteCount * writeShare + extentByteCount / 2)
                {
                    int b = k % bufferCount;
                    pending[b] = writes.WriteAsync(file, k * extentByteCount, buffers[b], 0, extentByteCount).AsTask();
                    written += extentByteCount;
                }
            }
            foreach (Task? t in pending)
                t?.GetAwaiter().GetResult();
            file.Fsync();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
            moved += written;
            return (moved / seconds, cpu / moved, reads.Name + (file.IsDirect ? ", O_DIRECT" : ", buffered"));
        }
        finally
        {
            foreach (AlignedBuffer? b in buffers)
                b?.Dispose();
            File.Delete(path);
        }
    }

    private static void RunAll(long byteCount, Func<long, ValueTask> request)
    {
        // Two requests in flight keep the queue full across request boundaries.
        var inFlight = new Queue<Task>();
        for (long offset = 0; offset < byteCount; offset += RequestByteCount)
        {
            if (inFlight.Count == 2)
                inFlight.Dequeue().GetAwaiter().GetResult();
            inFlight.Enqueue(request(offset).AsTask());
        }
        while (inFlight.Count > 0)
            inFlight.Dequeue().GetAwaiter().GetResult();
    }
}
