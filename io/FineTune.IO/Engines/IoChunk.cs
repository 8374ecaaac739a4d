namespace FineTune.IO.Engines;

/// <summary>
/// At most MaxRequestByteCount bytes of one request: the unit handed to the kernel. A short transfer advances
/// <see cref="BytesDone"/> and the rest is resubmitted; offsets stay sector-aligned because the kernel's O_DIRECT
/// transfers are whole sectors (and the fault hook only shortens to sector multiples).
/// </summary>
internal sealed unsafe class IoChunk
{
    private int _completed;

    public IoChunk(IoRequest request, long fileOffset, byte* address, int byteCount)
    {
        Request = request;
        FileOffset = fileOffset;
        Address = address;
        ByteCount = byteCount;
    }

    public IoRequest Request { get; }

    public long FileOffset { get; }

    public byte* Address { get; }

    public int ByteCount { get; }

    public int BytesDone { get; set; }

    /// <summary>EAGAIN/EINTR/zero-progress retries so far (bounded so a stuck device cannot spin forever).</summary>
    public int RetryCount { get; set; }

    public long NextFileOffset => FileOffset + BytesDone;

    public byte* NextAddress => Address + BytesDone;

    public int RemainingByteCount => ByteCount - BytesDone;

    /// <summary>True the first time only; guards the exactly-once completion invariant.</summary>
    public bool TryMarkCompleted() => Interlocked.Exchange(ref _completed, 1) == 0;
}
