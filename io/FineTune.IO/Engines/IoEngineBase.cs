using FineTune.IO.Native;

namespace FineTune.IO.Engines;

/// <summary>
/// What both engines share: argument and alignment checks before submission, splitting requests into chunks,
/// pinning buffer and file handle for the request's lifetime, interpreting kernel results (short transfer ->
/// resubmit, EAGAIN/EINTR -> retry, errno -> exception), exactly-once completion, counters and orderly disposal.
/// Subclasses only move chunks to the kernel (<see cref="SubmitChunks"/>) and report results
/// (<see cref="ProcessResult"/>, <see cref="FinishChunk"/>).
/// </summary>
internal abstract unsafe class IoEngineBase : IIoEngine
{
    /// <summary>Bound on consecutive EAGAIN/EINTR/zero-progress results for one chunk before it fails.</summary>
    internal const int MaxRetries = 1000;

    private long _bytesRead;
    private long _bytesWritten;
    private long _completedRequestCount;
    private long _submissionCount;
    private int _activeRequestCount;
    private int _disposing;

    protected IoEngineBase(int queueDepth, int maxRequestByteCount)
    {
        QueueDepth = queueDepth;
        MaxRequestByteCount = maxRequestByteCount;
    }

    public abstract string Name { get; }

    public int QueueDepth { get; }

    public int MaxRequestByteCount { get; }

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public long CompletedRequestCount => Interlocked.Read(ref _completedRequestCount);

    public long SubmissionCount => Interlocked.Read(ref _submissionCount);

    /// <summary>Set by the fault-injecting wrapper in tests; null in production.</summary>
    internal IIoFaultHook? FaultHook { get; set; }

    protected bool IsDisposing => Volatile.Read(ref _disposing) != 0;

    public ValueTask ReadAsync(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken = default) =>
        Submit(IoOperation.Read, file, fileOffset, buffer, bufferOffset, byteCount, cancellationToken);

    public ValueTask WriteAsync(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken = default) =>
        Submit(IoOperation.Write, file, fileOffset, buffer, bufferOffset, byteCount, cancellationToken);

    /// <summary>Throws ArgumentException unless offsets, length and address are sector multiples within the buffer.</summary>
    internal static void ValidateRequest(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(buffer);
        int sector = file.SectorByteCount;
        if (fileOffset < 0 || fileOffset % sector != 0)
            throw new ArgumentException($"fileOffset {fileOffset} must be a non-negative multiple of {sector} bytes (O_DIRECT alignment) for {file.Path}.", nameof(fileOffset));
        if (bufferOffset < 0 || bufferOffset % sector != 0)
            throw new ArgumentException($"bufferOffset {bufferOffset} must be a non-negative multiple of {sector} bytes (O_DIRECT alignment).", nameof(bufferOffset));
        if (byteCount < 0 || byteCount % sector != 0)
            throw new ArgumentException($"byteCount {byteCount} must be a non-negative multiple of {sector} bytes (O_DIRECT alignment); round the extent up to the sector.", nameof(byteCount));
        if (bufferOffset + byteCount > buffer.CapacityByteCount)
            throw new ArgumentException($"Range [{bufferOffset}, {bufferOffset + byteCount}) exceeds the buffer's {buffer.CapacityByteCount}-byte capacity.", nameof(byteCount));
        if (((long)buffer.Address + bufferOffset) % sector != 0)
            throw new ArgumentException($"Buffer address must be a multiple of {sector} bytes (O_DIRECT alignment).", nameof(buffer));
    }

    private ValueTask Submit(IoOperation operation, DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken)
    {
        ValidateRequest(file, fileOffset, buffer, bufferOffset, byteCount);
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled(cancellationToken);

        // Count the request before checking for disposal: Dispose sets the flag, then waits for the count to drain.
        Interlocked.Increment(ref _activeRequestCount);
        bool handleAdded = false;
        bool bufferPinned = false;
        try
        {
            ObjectDisposedException.ThrowIf(IsDisposing, this);
            if (byteCount == 0)
            {
                Interlocked.Decrement(ref _activeRequestCount);
                Interlocked.Increment(ref _completedRequestCount);
                return ValueTask.CompletedTask;
            }
            buffer.AddInFlight();
            bufferPinned = true;
            file.Handle.DangerousAddRef(ref handleAdded);
            var request = new IoRequest(operation, file, (int)file.Handle.DangerousGetHandle(), buffer, fileOffset, byteCount);
            int chunkCount = checked((int)((byteCount + MaxRequestByteCount - 1) / MaxRequestByteCount));
            var chunks = new IoChunk[chunkCount];
            byte* start = buffer.Pointer + bufferOffset;
            for (int index = 0; index < chunkCount; index++)
            {
                long offset = (long)index * MaxRequestByteCount;
                int length = (int)Math.Min(MaxRequestByteCount, byteCount - offset);
                chunks[index] = new IoChunk(request, fileOffset + offset, start + offset, length);
            }
            request.SetChunkCount(chunkCount);
            SubmitChunks(chunks);
            return new ValueTask(request.Task);
        }
        catch
        {
            if (handleAdded)
                file.Handle.DangerousRelease();
            if (bufferPinned)
                buffer.ReleaseInFlight();
            Interlocked.Decrement(ref _activeRequestCount);
            throw;
        }
    }

    /// <summary>Hands chunks to the kernel (or to worker threads). Must not throw after accepting them.</summary>
    protected abstract void SubmitChunks(IReadOnlyList<IoChunk> chunks);

    /// <summary>The byte count to submit for the chunk's remainder (the fault hook may shorten it).</summary>
    protected int NextSubmissionLength(IoChunk chunk)
    {
        Interlocked.Increment(ref _submissionCount);
        int remaining = chunk.RemainingByteCount;
        return FaultHook?.AdjustSubmissionLength(chunk.Request.Operation, remaining) ?? remaining;
    }

    /// <summary>
    /// Interprets one kernel result for <paramref name="chunk"/> (bytes transferred, or -errno). Returns true when the
    /// chunk must be submitted again (short transfer, EAGAIN, EINTR); otherwise the chunk is finished and
    /// <paramref name="error"/> says how.
    /// </summary>
    protected bool ProcessResult(IoChunk chunk, long result, out Exception? error)
    {
        error = null;
        IoRequest request = chunk.Request;
        if (FaultHook is { } hook)
            result = hook.AdjustResult(request.Operation, result);
        string operation = request.Operation == IoOperation.Read ? "read" : "write";
        if (result < 0)
        {
            int errno = (int)-result;
            if ((errno == LibC.EAGAIN || errno == LibC.EINTR) && ++chunk.RetryCount <= MaxRetries)
                return true;
            error = errno == LibC.ENOSPC
                ? new DiskFullException(operation, request.File.Path, chunk.NextFileOffset, chunk.RemainingByteCount, DiskFullException.TryGetAvailableBytes(request.File.Path))
                : new DirectIoException(operation, request.File.Path, chunk.NextFileOffset, chunk.RemainingByteCount, errno);
            return false;
        }
        if (result == 0)
        {
            if (request.Operation == IoOperation.Read)
            {
                error = new DirectIoException(operation, request.File.Path, chunk.NextFileOffset, chunk.RemainingByteCount, 0, "end of file reached before the requested bytes");
                return false;
            }
            if (++chunk.RetryCount <= MaxRetries)
                return true;
            error = new DirectIoException(operation, request.File.Path, chunk.NextFileOffset, chunk.RemainingByteCount, LibC.EIO, "the kernel repeatedly wrote 0 bytes");
            return false;
        }
        if (result > chunk.RemainingByteCount)
        {
            error = new DirectIoException(operation, request.File.Path, chunk.NextFileOffset, chunk.RemainingByteCount, 0, $"the kernel reported {result} bytes, more than requested");
            return false;
        }
        chunk.BytesDone += (int)result;
        chunk.RetryCount = 0;
        return chunk.BytesDone < chunk.ByteCount;
    }

    /// <summary>Ends one chunk; the last chunk of a request unpins it, updates counters and completes its task.</summary>
    protected void FinishChunk(IoChunk chunk, Exception? error)
    {
        if (!chunk.TryMarkCompleted())
            throw new InvalidOperationException("An I/O chunk completed twice (engine bug).");
        IoRequest request = chunk.Request;
        if (!request.FinishChunk(error))
            return;
        request.File.Handle.DangerousRelease();
        request.Buffer.ReleaseInFlight();
        if (request.FirstError is null)
        {
            if (request.Operation == IoOperation.Read)
                Interlocked.Add(ref _bytesRead, request.ByteCount);
            else
                Interlocked.Add(ref _bytesWritten, request.ByteCount);
        }
        Interlocked.Increment(ref _completedRequestCount);
        Interlocked.Decrement(ref _activeRequestCount);
        request.Complete();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposing, 1) != 0)
            return;
        // Requests already accepted run to completion: the kernel may be writing into their buffers.
        SpinWait.SpinUntil(() => Volatile.Read(ref _activeRequestCount) == 0);
        ReleaseResources();
    }

    /// <summary>Stops threads and frees the ring; called once, after every accepted request has completed.</summary>
    protected abstract void ReleaseResources();
}
