namespace FineTune.Offload.Memory;

/// <summary>
/// One tensor-shape class of host buffers in a pool plan: <see cref="Count"/> buffers of exactly
/// <see cref="ByteCount"/> bytes each (e.g. sub-group states, 12 x 25,165,824 bytes). The exact pool gives each
/// buffer this many bytes (rounded only to the page for O_DIRECT alignment); the baseline allocator ignores it and
/// sizes every buffer for the largest class, rounded to a power of two.
/// </summary>
public sealed record BufferClass
{
    public BufferClass(BufferKind kind, long byteCount, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(byteCount);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Kind = kind;
        ByteCount = byteCount;
        Count = count;
    }

    /// <summary>What the buffers hold; the key to rent them by.</summary>
    public BufferKind Kind { get; }

    /// <summary>Name used in accounting messages and `finetune plan`.</summary>
    public string Name => Kind.Describe();

    /// <summary>Bytes each buffer of this class must hold.</summary>
    public long ByteCount { get; }

    /// <summary>How many buffers of this class the plan needs at the same time.</summary>
    public int Count { get; }

    /// <summary>Bytes the exact pool reserves for the class (each buffer page-rounded).</summary>
    public long ReservedByteCount => HostAlignment.RoundUpToPage(ByteCount) * Count;
}
