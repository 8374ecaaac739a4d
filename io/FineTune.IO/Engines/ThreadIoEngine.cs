using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using FineTune.IO.Native;

namespace FineTune.IO.Engines;

/// <summary>
/// The fallback engine: blocking pread(2)/pwrite(2) on <see cref="IIoEngine.QueueDepth"/> dedicated threads (at most
/// 64), fed from one queue. Used where io_uring is unavailable (ENOSYS, or EPERM under container seccomp profiles).
/// Dedicated threads rather than the thread pool, so a deep queue of blocking I/O never starves async continuations.
/// Not used for the hot path when io_uring works: each chunk costs a thread wake-up and a syscall.
/// </summary>
internal sealed unsafe class ThreadIoEngine : IoEngineBase
{
    private const int MaxThreadCount = 64;

    private readonly BlockingCollection<IoChunk> _queue = new(new ConcurrentQueue<IoChunk>());
    private readonly Thread[] _threads;

    public ThreadIoEngine(int queueDepth, int maxRequestByteCount)
        : base(queueDepth, maxRequestByteCount)
    {
        _threads = new Thread[Math.Min(queueDepth, MaxThreadCount)];
        for (int index = 0; index < _threads.Length; index++)
        {
            _threads[index] = new Thread(WorkerLoop) { IsBackground = true, Name = $"FineTune.IO pread/pwrite {index}" };
            _threads[index].Start();
        }
    }

    public override string Name => "threads";

    protected override void SubmitChunks(IReadOnlyList<IoChunk> chunks)
    {
        foreach (IoChunk chunk in chunks)
            _queue.Add(chunk);
    }

    private void WorkerLoop()
    {
        foreach (IoChunk chunk in _queue.GetConsumingEnumerable())
        {
            Exception? error;
            try
            {
                error = Execute(chunk);
            }
            catch (Exception exception)
            {
                error = exception; // a bug, but the request must still complete rather than hang
            }
            FinishChunk(chunk, error);
        }
    }

    /// <summary>Loops pread/pwrite until the chunk is complete or has failed.</summary>
    private Exception? Execute(IoChunk chunk)
    {
        IoRequest request = chunk.Request;
        while (true)
        {
            int length = NextSubmissionLength(chunk);
            long result = request.Operation == IoOperation.Read
                ? LibC.PRead(request.Descriptor, chunk.NextAddress, (nuint)length, chunk.NextFileOffset)
                : LibC.PWrite(request.Descriptor, chunk.NextAddress, (nuint)length, chunk.NextFileOffset);
            if (result < 0)
                result = -Marshal.GetLastPInvokeError();
            if (!ProcessResult(chunk, result, out Exception? error))
                return error;
        }
    }

    protected override void ReleaseResources()
    {
        _queue.CompleteAdding();
        foreach (Thread thread in _threads)
            thread.Join();
        _queue.Dispose();
    }
}
