namespace FineTune.IO;

/// <summary>
/// Asynchronous reads and writes between a <see cref="DirectFile"/> and an <see cref="AlignedBuffer"/>.
/// Implementations: io_uring (<c>IoUringEngine</c>) and pread/pwrite on dedicated threads (<c>ThreadIoEngine</c>);
/// pick one with <see cref="IoEngineFactory"/>.
///
/// Contract, shared by every engine:
/// - fileOffset, bufferOffset and byteCount must be multiples of the file's sector (4096), and the range must lie in
///   the buffer's capacity; otherwise ArgumentException is thrown synchronously, before anything is submitted.
/// - A request larger than <see cref="MaxRequestByteCount"/> is split into chunks submitted concurrently; the task
///   completes once, after every chunk has finished. Short transfers are resubmitted and EAGAIN is retried.
/// - A read that reaches end of file before byteCount fails (errno 0); errors are <see cref="DirectIoException"/>
///   (ENOSPC: <see cref="DiskFullException"/>).
/// - The buffer and the file are pinned until completion: disposing either meanwhile throws/defers.
/// - The token is observed before submission only; once the kernel owns the buffer the request runs to the end.
/// - Dispose waits for requests in flight, then releases the engine's threads and ring.
/// </summary>
public interface IIoEngine : IDisposable
{
    /// <summary>"io_uring" or "threads".</summary>
    string Name { get; }

    /// <summary>Maximum number of chunks in flight at once.</summary>
    int QueueDepth { get; }

    /// <summary>Largest single submission (1 MiB by default); bigger requests are split.</summary>
    int MaxRequestByteCount { get; }

    long BytesRead { get; }

    long BytesWritten { get; }

    /// <summary>Requests (ReadAsync/WriteAsync calls) completed, successfully or not.</summary>
    long CompletedRequestCount { get; }

    /// <summary>Chunks handed to the kernel, resubmissions of short transfers and EAGAIN retries included.</summary>
    long SubmissionCount { get; }

    ValueTask ReadAsync(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken = default);

    ValueTask WriteAsync(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken = default);
}
