namespace FineTune.Offload.Memory;

/// <summary>
/// The buffers a host memory pool must hold, by <see cref="BufferKind"/>. Built once by whoever plans the run (the
/// training engine's memory plan, or a store used alone) and handed to <see cref="HostMemoryPool.Create"/>, which
/// sizes the whole pool from it before anything runs. Each kind appears once.
/// </summary>
public sealed class PoolPlan
{
    private readonly List<BufferClass> _classes = new();

    public IReadOnlyList<BufferClass> Classes => _classes;

    /// <summary>Adds a class; a kind already present with the same byte count has its count raised instead.</summary>
    public PoolPlan Add(BufferKind kind, long byteCount, int count)
    {
        int index = _classes.FindIndex(c => c.Kind == kind);
        if (index < 0)
        {
            _classes.Add(new BufferClass(kind, byteCount, count));
            return this;
        }
        BufferClass existing = _classes[index];
        if (existing.ByteCount != byteCount)
            throw new ArgumentException($"Buffer class '{kind.Describe()}' already holds {existing.ByteCount} bytes per buffer, not {byteCount}.", nameof(byteCount));
        _classes[index] = new BufferClass(kind, byteCount, existing.Count + count);
        return this;
    }

    /// <summary>Every class of <paramref name="other"/> added to this plan.</summary>
    public PoolPlan AddAll(PoolPlan other)
    {
        foreach (BufferClass c in other.Classes)
            Add(c.Kind, c.ByteCount, c.Count);
        return this;
    }

    /// <summary>Sum of exact byte counts over every buffer, before page rounding.</summary>
    public long ExactByteCount => _classes.Sum(c => c.ByteCount * c.Count);

    /// <summary>Bytes the given allocator reserves for this plan (what the budget is checked against).</summary>
    public long ReservedByteCount(PoolAllocatorKind kind) => kind switch
    {
        PoolAllocatorKind.Exact => _classes.Sum(c => c.ReservedByteCount),
        PoolAllocatorKind.Baseline => BaselineBufferByteCount() * _classes.Sum(c => (long)c.Count),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Exact reserved bytes of one kind (0 when absent).</summary>
    public long ReservedByteCount(BufferKind kind) => _classes.FirstOrDefault(c => c.Kind == kind)?.ReservedByteCount ?? 0;

    /// <summary>The one buffer size the baseline allocator uses: the largest class, rounded up to a power of two.</summary>
    public long BaselineBufferByteCount()
    {
        long largest = _classes.Count == 0 ? 0 : _classes.Max(c => c.ByteCount);
        // At least one page: every pool buffer is an O_DIRECT-capable allocation.
        return largest == 0 ? 0 : Math.Max(HostAlignment.PageByteCount, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)largest));
    }

    public BufferClass Find(BufferKind kind) =>
        _classes.Find(c => c.Kind == kind) ?? throw new ArgumentException($"The pool plan has no buffer class '{kind.Describe()}'.", nameof(kind));

    /// <summary>The class of <paramref name="kind"/>, or null.</summary>
    public BufferClass? Get(BufferKind kind) => _classes.Find(c => c.Kind == kind);
}
