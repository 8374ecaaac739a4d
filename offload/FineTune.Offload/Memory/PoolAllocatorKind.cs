namespace FineTune.Offload.Memory;

/// <summary>How a <see cref="HostMemoryPool"/> turns a plan into memory.</summary>
public enum PoolAllocatorKind
{
    /// <summary>Exact byte count per class, each buffer page-aligned (MemAscend's lesson).</summary>
    Exact,

    /// <summary>
    /// ZeRO-Infinity's behaviour, kept for comparison: every buffer sized for the largest class and rounded up to
    /// a power of two (PyTorch's caching pinned allocator rounds requests that way).
    /// </summary>
    Baseline,
}
