using System.Diagnostics;

namespace FineTune.IO.Bench;

/// <summary>
/// The measurements behind `finetune bench io`: sequential O_DIRECT write then read of one preallocated file with each
/// engine (1 MiB requests, queue depth 32, as fio), an io_uring read sweep over queue depths, fio itself on the same
/// directory as the limit, and the CRC32C line. Files are created in the given directory and always deleted.
/// The CLI only parses options and prints the report.
/// </summary>
public static class IoBench
{
    public static async Task<IoBenchReport> RunAsync(IoBenchOptions options, Action<string>? progress = null)
    {
        Validate(options);
        progress ??= _ => { };
        Directory.CreateDirectory(options.Directory);
        var engines = new List<IoBenchMeasurement>();
        var sweep = new List<IoBenchMeasurement>();
        var fioWrites = new List<double>();
        var fioReads = new List<double>();
        IReadOnlyList<string> fioCommands = Array.Empty<string>();
        string? fioProblem = options.RunFio ? null : "fio was not run (--no-fio)";
        bool isDirect = true;
        using var buffers = new BufferRing(Math.Max(options.QueueDepth, options.SweepQueueDepths.Max()), options.BlockByteCount);
        for (int round = 1; round <= options.RoundCount; round++)
        {
            foreach (IoEngineKind kind in new[] { IoEngineKind.IoUring, IoEngineKind.Threads })
            {
                bool runSweep = round == 1 && kind == IoEngineKind.IoUring;
                isDirect &= await EnginePassesAsync(kind, options, buffers, engines, runSweep ? sweep : null, progress, round);
            }
            if (options.RunFio && fioProblem is null)
            {
                progress($"round {round}: fio sequential write and read");
                FioResult fio = FioRunner.Run(options.Directory, options.FileByteCount, options.BlockByteCount, options.QueueDepth, TimeSpan.FromMinutes(5));
                fioWrites.AddRange(fio.WriteBytesPerSecond);
                fioReads.AddRange(fio.ReadBytesPerSecond);
                fioCommands = fio.Commands;
                fioProblem = fio.Problem;
            }
        }
        var fioResult = new FioResult(fioWrites, fioReads, fioCommands, fioProblem);

        progress("CRC32C and memory read bandwidth");
        CrcBenchResult crc = CrcBench.Run(options.CrcBufferByteCount);
        return new IoBenchReport(options.Directory, isDirect, options.RoundCount, engines, sweep, fioResult, crc);
    }

    /// <summary>
    /// One engine's write then read of a fresh preallocated file (as fio gets: writes land in unwritten extents),
    /// plus the io_uring queue-depth sweep on that file when <paramref name="sweep"/> is given. Returns IsDirect.
    /// </summary>
    private static async Task<bool> EnginePassesAsync(IoEngineKind kind, IoBenchOptions options, BufferRing buffers,
        List<IoBenchMeasurement> engines, List<IoBenchMeasurement>? sweep, Action<string> progress, int round)
    {
        IIoEngine engine;
        try
        {
            engine = IoEngineFactory.Create(kind, options.QueueDepth, options.BlockByteCount);
        }
        catch (NotSupportedException exception)
        {
            progress($"skipping {kind}: {exception.Message}");
            return true;
        }
        string path = Path.Combine(options.Directory, $"finetune-bench-io-{Environment.ProcessId}-{kind}.dat");
        try
        {
            using DirectFile file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
            file.Preallocate(options.FileByteCount);
            using (engine)
            {
                progress($"round {round}: {engine.Name} sequential write of {options.FileByteCount} bytes, then read");
                engines.Add(await PassAsync(engine, file, buffers, write: true, options.FileByteCount, options.QueueDepth));
                file.Fsync();
                engines.Add(await PassAsync(engine, file, buffers, write: false, options.FileByteCount, options.QueueDepth));
            }
            if (sweep is not null)
            {
                long sweepByteCount = Math.Min(options.SweepByteCount, options.FileByteCount);
                foreach (int depth in options.SweepQueueDepths)
                {
                    progress($"io_uring read sweep: queue depth {depth}");
                    using IIoEngine sweepEngine = IoEngineFactory.Create(IoEngineKind.IoUring, depth, options.BlockByteCount);
                    sweep.Add(await PassAsync(sweepEngine, file, buffers, write: false, sweepByteCount, depth));
                }
            }
            return file.IsDirect;
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Moves <paramref name="byteCount"/> bytes sequentially in blocks, keeping <paramref name="queueDepth"/> requests
    /// in flight: block i uses buffer i mod depth, and waits for that buffer's previous request first.
    /// </summary>
    private static async Task<IoBenchMeasurement> PassAsync(IIoEngine engine, DirectFile file, BufferRing buffers, bool write, long byteCount, int queueDepth)
    {
        int blockByteCount = buffers.BlockByteCount;
        long blockCount = byteCount / blockByteCount;
        var inFlight = new Task?[queueDepth];
        long start = Stopwatch.GetTimestamp();
        for (long block = 0; block < blockCount; block++)
        {
            int slot = (int)(block % queueDepth);
            if (inFlight[slot] is Task previous)
                await previous.ConfigureAwait(false);
            long fileOffset = block * blockByteCount;
            inFlight[slot] = write
                ? engine.WriteAsync(file, fileOffset, buffers[slot], 0, blockByteCount).AsTask()
                : engine.ReadAsync(file, fileOffset, buffers[slot], 0, blockByteCount).AsTask();
        }
        foreach (Task? task in inFlight)
        {
            if (task is not null)
                await task.ConfigureAwait(false);
        }
        TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
        return new IoBenchMeasurement(engine.Name, write ? "write" : "read", queueDepth, blockCount * blockByteCount, elapsed);
    }

    private static void Validate(IoBenchOptions options)
    {
        if (options.BlockByteCount <= 0 || options.BlockByteCount % AlignedBuffer.Alignment != 0)
            throw new UserErrorException($"--block must be a positive multiple of {AlignedBuffer.Alignment} bytes; got {options.BlockByteCount}.");
        if (options.FileByteCount < options.BlockByteCount || options.FileByteCount % options.BlockByteCount != 0)
            throw new UserErrorException($"--size must be a positive multiple of the {options.BlockByteCount}-byte block; got {options.FileByteCount}.");
        if (options.RoundCount < 1)
            throw new UserErrorException("--rounds must be at least 1.");
        if (options.QueueDepth < 1 || options.SweepQueueDepths.Any(depth => depth < 1))
            throw new UserErrorException("Queue depths must be at least 1.");
    }

    /// <summary>One aligned block buffer per queue slot, filled with seeded random bytes (nothing compressible).</summary>
    private sealed class BufferRing : IDisposable
    {
        private readonly AlignedBuffer[] _buffers;

        public BufferRing(int count, int blockByteCount)
        {
            BlockByteCount = blockByteCount;
            var random = new Random(7);
            _buffers = new AlignedBuffer[count];
            for (int index = 0; index < count; index++)
            {
                _buffers[index] = new AlignedBuffer(blockByteCount);
                random.NextBytes(_buffers[index].Span);
            }
        }

        public int BlockByteCount { get; }

        public AlignedBuffer this[int index] => _buffers[index];

        public void Dispose()
        {
            foreach (AlignedBuffer buffer in _buffers)
                buffer.Dispose();
        }
    }
}
