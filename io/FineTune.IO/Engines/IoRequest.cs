namespace FineTune.IO.Engines;

/// <summary>
/// One ReadAsync/WriteAsync call: pins its buffer and file handle, counts its outstanding chunks, and completes its
/// task exactly once when the last chunk finishes (with the first chunk error, if any).
/// </summary>
internal sealed class IoRequest
{
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _remainingChunks;
    private Exception? _firstError;

    public IoRequest(IoOperation operation, DirectFile file, int descriptor, AlignedBuffer buffer, long fileOffset, long byteCount)
    {
        Operation = operation;
        File = file;
        Descriptor = descriptor;
        Buffer = buffer;
        FileOffset = fileOffset;
        ByteCount = byteCount;
    }

    public IoOperation Operation { get; }

    public DirectFile File { get; }

    /// <summary>Captured at submission; stays valid because the request holds a reference on the SafeHandle.</summary>
    public int Descriptor { get; }

    public AlignedBuffer Buffer { get; }

    public long FileOffset { get; }

    public long ByteCount { get; }

    public Task Task => _completion.Task;

    public void SetChunkCount(int chunkCount) => _remainingChunks = chunkCount;

    /// <summary>Records one chunk's end; returns true for the call that finished the whole request.</summary>
    public bool FinishChunk(Exception? error)
    {
        if (error is not null)
            Interlocked.CompareExchange(ref _firstError, error, null);
        int remaining = Interlocked.Decrement(ref _remainingChunks);
        if (remaining < 0)
            throw new InvalidOperationException("An I/O chunk completed twice (engine bug).");
        return remaining == 0;
    }

    public Exception? FirstError => Volatile.Read(ref _firstError);

    public void Complete()
    {
        if (FirstError is { } error)
            _completion.SetException(error);
        else
            _completion.SetResult();
    }
}
