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
