namespace FineTune.Offload.Memory;

/// <summary>
/// One tensor-shape class of host buffers in a pool plan: <see cref="Count"/> buffers of exactly
/// <see cref="ByteCount"/> bytes each (e.g. "sub-group states, 12 x 25,165,824 bytes" or "tail sub-group").
/// The exact pool gives each buffer this many bytes (rounded only to the page for O_DIRECT alignment);
/// the baseline allocator ignores it and sizes every buffer for the largest class, rounded to a power of two.
/// </summary>
public sealed record BufferClass
{
    public BufferClass(string name, long byteCount, int count)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(byteCount);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Name = name;
        ByteCount = byteCount;
        Count = count;
    }

    /// <summary>Name used to rent from the pool and in accounting messages.</summary>
    public string Name { get; }

    /// <summary>Bytes each buffer of this class must hold.</summary>
    public long ByteCount { get; }

    /// <summary>How many buffers of this class the plan needs at the same time.</summary>
    public int Count { get; }
}
