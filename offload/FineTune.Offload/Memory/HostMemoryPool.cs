using FineTune.IO;

namespace FineTune.Offload.Memory;

/// <summary>
/// The one pool all large host buffers come from. Sized once from a <see cref="PoolPlan"/>: every byte is
/// allocated (and registered with CUDA when a registrar is given) at creation, nothing is allocated later, so the
/// pool's reserved bytes are fixed for the whole run. A plan that does not fit the host budget is refused before
/// anything is allocated. Renting a class with no free buffer is a planning bug and throws.
///
/// Each buffer is an io <see cref="AlignedBuffer"/> (page-aligned, guarded against being freed while an I/O on it
/// is in flight), so leases go straight to the I/O engine. Exact allocator: each buffer holds the class's byte
/// count rounded up to the 4 KiB sector. Baseline allocator (ZeRO-Infinity-like, for comparison): every buffer
/// sized for the largest class and rounded up to a power of two.
/// Thread-safe: rent and return take a lock (a few per sub-group, never per element).
/// </summary>
public sealed unsafe class HostMemoryPool : IDisposable
{
    private readonly object _lock = new();
    private readonly PoolPlan _plan;
    private readonly IHostMemoryRegistrar? _registrar;
    private readonly Dictionary<string, Stack<int>> _freeSlots = new();
    private readonly List<(string ClassName, AlignedBuffer Buffer, long ByteCount)> _slots = new();
    private readonly HashSet<int> _rentedSlots = new();
    private long _inUseByteCount;
    private long _peakInUseByteCount;
    private bool _disposed;

    private HostMemoryPool(PoolPlan plan, PoolAllocatorKind kind, IHostMemoryRegistrar? registrar)
    {
        _plan = plan;
        Kind = kind;
        _registrar = registrar;
    }

    /// <summary>Which allocator built this pool.</summary>
    public PoolAllocatorKind Kind { get; }

    /// <summary>Bytes allocated from the OS for the pool (fixed after creation).</summary>
    public long ReservedByteCount { get; private set; }

    /// <summary>Backing bytes of the buffers currently rented.</summary>
    public long InUseByteCount { get { lock (_lock) return _inUseByteCount; } }

    /// <summary>Highest <see cref="InUseByteCount"/> seen since creation.</summary>
    public long PeakInUseByteCount { get { lock (_lock) return _peakInUseByteCount; } }

    /// <summary>Leases rented and not yet returned.</summary>
    public int OutstandingLeaseCount { get { lock (_lock) return _rentedSlots.Count; } }

    /// <summary>Total buffers the pool holds.</summary>
    public int BufferCount => _slots.Count;

    /// <summary>
    /// Allocates the pool for <paramref name="plan"/>. Throws <see cref="UserErrorException"/> before allocating
    /// anything when the plan's reserved bytes exceed <paramref name="budgetByteCount"/> (host_gb).
    /// </summary>
    public static HostMemoryPool Create(PoolPlan plan, long budgetByteCount, PoolAllocatorKind kind = PoolAllocatorKind.Exact,
        IHostMemoryRegistrar? registrar = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        long need = plan.ReservedByteCount(kind);
        if (need > budgetByteCount)
            throw new UserErrorException(
                $"The host buffer pool needs {FormatGiB(need)} ({need:N0} bytes) but the host budget host_gb is {FormatGiB(budgetByteCount)}; " +
                "raise host_gb or make the sub-groups smaller.");
        var pool = new HostMemoryPool(plan, kind, registrar);
        try
        {
            pool.Allocate();
        }
        catch
        {
            pool.Dispose();
            throw;
        }
        return pool;
    }

    private void Allocate()
    {
        long baselineByteCount = _plan.BaselineBufferByteCount();
        foreach (BufferClass bufferClass in _plan.Classes)
        {
            var free = new Stack<int>();
            _freeSlots[bufferClass.Name] = free;
            if (bufferClass.Count == 0)
                continue;
            long backingByteCount = Kind == PoolAllocatorKind.Exact ? HostAlignment.RoundUpToPage(bufferClass.ByteCount) : baselineByteCount;
            for (int i = 0; i < bufferClass.Count; i++)
            {
                var buffer = new AlignedBuffer(backingByteCount);
                _slots.Add((bufferClass.Name, buffer, bufferClass.ByteCount));
                ReservedByteCount += buffer.CapacityByteCount;
                _registrar?.Register(buffer.Pointer, buffer.CapacityByteCount);
                free.Push(_slots.Count - 1);
            }
        }
    }

    /// <summary>How many buffers the plan gave class <paramref name="className"/> (0 when the plan lacks it).</summary>
    public int CountOf(string className) => _plan.Classes.FirstOrDefault(c => c.Name == className)?.Count ?? 0;

    /// <summary>Bytes of each buffer of class <paramref name="className"/> as planned (0 when the plan lacks it).</summary>
    public long ByteCountOf(string className) => _plan.Classes.FirstOrDefault(c => c.Name == className)?.ByteCount ?? 0;

    /// <summary>Rents a buffer of the named class. Throws when none is free: the plan under-counted.</summary>
    public HostLease Rent(string className)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_freeSlots.TryGetValue(className, out Stack<int>? free))
                throw new ArgumentException($"The pool has no buffer class '{className}'.", nameof(className));
            if (free.Count == 0)
                throw new InvalidOperationException($"All {_plan.Find(className).Count} buffers of class '{className}' are rented; the pool plan under-counts them.");
            int slot = free.Pop();
            _rentedSlots.Add(slot);
            var (name, buffer, byteCount) = _slots[slot];
            _inUseByteCount += buffer.CapacityByteCount;
            _peakInUseByteCount = Math.Max(_peakInUseByteCount, _inUseByteCount);
            return new HostLease(this, slot, name, buffer, byteCount);
        }
    }

    internal void Return(HostLease lease)
    {
        lock (_lock)
        {
            if (!_rentedSlots.Remove(lease.Slot))
                throw new InvalidOperationException($"Buffer {lease.Slot} of class '{lease.ClassName}' was returned but is not rented.");
            _freeSlots[lease.ClassName].Push(lease.Slot);
            _inUseByteCount -= lease.BackingByteCount;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        // AlignedBuffer.Dispose throws while an I/O on the buffer is in flight: freeing it then would be a bug.
        foreach (var (_, buffer, _) in _slots)
        {
            if (buffer.IsDisposed)
                continue;
            _registrar?.Unregister(buffer.Pointer);
            buffer.Dispose();
        }
    }

    internal static string FormatGiB(long byteCount) => $"{byteCount / (double)(1L << 30):0.###} GiB";
}
