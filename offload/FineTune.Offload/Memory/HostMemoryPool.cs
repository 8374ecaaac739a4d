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
    private readonly Dictionary<BufferKind, Stack<int>> _freeSlots = new();
    private readonly List<(BufferKind Kind, AlignedBuffer Buffer, long ByteCount)> _slots = new();
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
            _freeSlots[bufferClass.Kind] = free;
            if (bufferClass.Count == 0)
                continue;
            long backingByteCount = Kind == PoolAllocatorKind.Exact ? HostAlignment.RoundUpToPage(bufferClass.ByteCount) : baselineByteCount;
            for (int i = 0; i < bufferClass.Count; i++)
            {
                var buffer = new AlignedBuffer(backingByteCount);
                _slots.Add((bufferClass.Kind, buffer, bufferClass.ByteCount));
                ReservedByteCount += buffer.CapacityByteCount;
                _registrar?.Register(buffer.Pointer, buffer.CapacityByteCount);
                free.Push(_slots.Count - 1);
            }
        }
    }

    /// <summary>The plan the pool was sized from.</summary>
    public PoolPlan Plan => _plan;

    /// <summary>How many buffers the plan gave <paramref name="kind"/> (0 when the plan lacks it).</summary>
    public int CountOf(BufferKind kind) => _plan.Get(kind)?.Count ?? 0;

    /// <summary>Bytes of each buffer of <paramref name="kind"/> as planned (0 when the plan lacks it).</summary>
    public long ByteCountOf(BufferKind kind) => _plan.Get(kind)?.ByteCount ?? 0;

    /// <summary>Bytes reserved for <paramref name="kind"/>'s buffers (what the plan's figure must equal).</summary>
    public long ReservedByteCountOf(BufferKind kind)
    {
        lock (_lock)
            return _slots.Where(s => s.Kind == kind).Sum(s => s.Buffer.CapacityByteCount);
    }

    /// <summary>Rents a buffer of <paramref name="kind"/>. Throws when none is free: the plan under-counted.</summary>
    public HostLease Rent(BufferKind kind)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_freeSlots.TryGetValue(kind, out Stack<int>? free))
                throw new ArgumentException($"The pool has no buffer class '{kind.Describe()}'.", nameof(kind));
            if (free.Count == 0)
                throw new InvalidOperationException($"All {_plan.Find(kind).Count} buffers of class '{kind.Describe()}' are rented; the pool plan under-counts them.");
            int slot = free.Pop();
            _rentedSlots.Add(slot);
            var (rentedKind, buffer, byteCount) = _slots[slot];
            _inUseByteCount += buffer.CapacityByteCount;
            _peakInUseByteCount = Math.Max(_peakInUseByteCount, _inUseByteCount);
            return new HostLease(this, slot, rentedKind, buffer, byteCount);
        }
    }

    /// <summary>Rents every buffer of <paramref name="kind"/> (a ring's buffers).</summary>
    public IReadOnlyList<HostLease> RentAll(BufferKind kind)
    {
        var leases = new List<HostLease>();
        try
        {
            for (int i = CountOf(kind); i > 0; i--)
                leases.Add(Rent(kind));
        }
        catch
        {
            foreach (HostLease lease in leases)
                lease.Dispose();
            throw;
        }
        return leases;
    }

    internal void Return(HostLease lease)
    {
        lock (_lock)
        {
            if (!_rentedSlots.Remove(lease.Slot))
                throw new InvalidOperationException($"Buffer {lease.Slot} of class '{lease.ClassName}' was returned but is not rented.");
            _freeSlots[lease.Kind].Push(lease.Slot);
            _inUseByteCount -= lease.BackingByteCount;
        }
    }

    /// <summary>
    /// Gives the memory of every free buffer of <paramref name="kinds"/> back to the OS (a training engine at the end,
    /// before it copies the weights out, so both never coexist). Trimmed buffers cannot be rented again.
    /// </summary>
    public void Trim(IReadOnlyCollection<BufferKind> kinds)
    {
        lock (_lock)
        {
            foreach (BufferKind kind in kinds)
            {
                if (!_freeSlots.TryGetValue(kind, out Stack<int>? free))
                    continue;
                while (free.Count > 0)
                {
                    int slot = free.Pop();
                    AlignedBuffer buffer = _slots[slot].Buffer;
                    _registrar?.Unregister(buffer.Pointer);
                    ReservedByteCount -= buffer.CapacityByteCount;
                    buffer.Dispose();
                }
            }
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
