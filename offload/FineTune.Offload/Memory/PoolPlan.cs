namespace FineTune.Offload.Memory;

/// <summary>
/// The buffers a host memory pool must hold, by tensor-shape class. Built once by whoever plans the run
/// (the partitioned optimizer, the activation offloader) and handed to <see cref="HostMemoryPool.Create"/>,
/// which sizes the whole pool from it before anything runs. Class names are unique.
/// </summary>
public sealed class PoolPlan
{
    private readonly List<BufferClass> _classes = new();

    public IReadOnlyList<BufferClass> Classes => _classes;

    /// <summary>Adds a class; a class with the same name and byte count has its count raised instead.</summary>
    public PoolPlan Add(string name, long byteCount, int count)
    {
        int index = _classes.FindIndex(c => c.Name == name);
        if (index < 0)
        {
            _classes.Add(new BufferClass(name, byteCount, count));
            return this;
        }
        BufferClass existing = _classes[index];
        if (existing.ByteCount != byteCount)
            throw new ArgumentException($"Buffer class '{name}' already holds {existing.ByteCount} bytes per buffer, not {byteCount}.", nameof(byteCount));
        _classes[index] = new BufferClass(name, byteCount, existing.Count + count);
        return this;
    }

    /// <summary>Sum of exact byte counts over every buffer, before page rounding.</summary>
    public long ExactByteCount => _classes.Sum(c => c.ByteCount * c.Count);

    /// <summary>Bytes the given allocator reserves for this plan (what the budget is checked against).</summary>
    public long ReservedByteCount(PoolAllocatorKind kind) => kind switch
    {
        PoolAllocatorKind.Exact => _classes.Sum(c => HostAlignment.RoundUpToPage(c.ByteCount) * c.Count),
        PoolAllocatorKind.Baseline => BaselineBufferByteCount() * _classes.Sum(c => (long)c.Count),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The one buffer size the baseline allocator uses: the largest class, rounded up to a power of two.</summary>
    public long BaselineBufferByteCount()
    {
        long largest = _classes.Count == 0 ? 0 : _classes.Max(c => c.ByteCount);
        // At least one page: every pool buffer is an O_DIRECT-capable allocation.
        return largest == 0 ? 0 : Math.Max(HostAlignment.PageByteCount, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)largest));
    }

    public BufferClass Find(string name) =>
        _classes.Find(c => c.Name == name) ?? throw new ArgumentException($"The pool plan has no buffer class '{name}'.", nameof(name));
}
