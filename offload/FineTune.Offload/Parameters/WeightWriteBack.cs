using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Rings;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The optimizer's <see cref="IWeightWriteBack"/> onto a <see cref="WeightFile"/>: a <see cref="BufferRing"/> of a few
/// pool buffers, each one sub-group of weights; the update of sub-group k fills one while k-1's write is in flight.
/// Rent reuses the buffer whose write finished first, waiting for it when all are in flight (counted as write wait).
/// Sub-groups must start on a page of the file (<see cref="PartitionedOptimizer.RoundSubGroupElementCount"/>).
/// </summary>
public sealed class WeightWriteBack : IWeightWriteBack, IDisposable
{
    private readonly WeightFile _file;
    private readonly BufferRing _ring;
    private RingSlot? _rented;
    private SubGroup? _rentedGroup;

    private readonly TransferCounters _counters;

    public WeightWriteBack(WeightFile file, HostMemoryPool pool, TransferCounters counters)
    {
        _file = file;
        _counters = counters;
        if (pool.CountOf(BufferKind.WeightWriteBack) == 0)
            throw new ArgumentException($"The pool has no '{BufferKind.WeightWriteBack.Describe()}' buffers; plan them with {nameof(AddToPlan)}.", nameof(pool));
        _ring = new BufferRing("weight write-back", pool.RentAll(BufferKind.WeightWriteBack), counters);
    }

    public ElementType WeightType => _file.ElementType;

    /// <summary>Adds <paramref name="bufferCount"/> buffers of one sub-group of weights each to <paramref name="plan"/>.</summary>
    public static void AddToPlan(PoolPlan plan, long subGroupElementCount, ElementType type, int bufferCount = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferCount, 1);
        plan.Add(BufferKind.WeightWriteBack, HostAlignment.RoundUpToPage(subGroupElementCount * type.ByteCount()), bufferCount);
    }

    public unsafe nint Rent(SubGroup group)
    {
        // A buffer rented and never committed belongs to an update that failed: its contents are abandoned.
        if (_rented is not null)
            _ring.Discard(_rented);
        _rented = null;
        _rentedGroup = null;
        long needed = HostAlignment.RoundUpToPage(group.ElementCount * _file.ElementByteCount);
        if (_ring.BufferByteCount < needed)
            throw new InvalidOperationException($"Sub-group {group.Index} needs {needed} bytes of weight buffer; the plan gave {_ring.BufferByteCount}.");
        RingSlot slot = _ring.TakeVictim()!; // never null: the ring only holds writes, which it waits for
        _ring.Fill(slot, group.Index);
        _rented = slot;
        _rentedGroup = group;
        return (nint)slot.Lease.Pointer;
    }

    public Task Commit(SubGroup group)
    {
        if (_rented is null || !ReferenceEquals(_rentedGroup, group))
            throw new InvalidOperationException($"Sub-group {group.Index}'s weights were committed without being rented.");
        RingSlot slot = _rented;
        _rented = null;
        _rentedGroup = null;
        _ring.StartWrite(slot, group.ElementCount * _file.ElementByteCount, buffer => _file.WriteAsync(group.FirstElement, group.ElementCount, buffer));
        return slot.Pending!;
    }

    public void ReadCurrent(SubGroup group)
    {
        if (_rented is null || !ReferenceEquals(_rentedGroup, group))
            throw new InvalidOperationException($"Sub-group {group.Index}'s weights were read back without being rented.");
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        long offset = _file.ReadAsync(group.FirstElement, group.ElementCount, _rented.Lease.Buffer).AsTask().GetAwaiter().GetResult();
        if (offset != 0)
            throw new InvalidOperationException($"Sub-group {group.Index} does not start on a page of the weight file.");
        _counters.AddRead(_file.Window(group.FirstElement, group.ElementCount).ByteCount);
        _counters.AddReadWaitSince(start);
    }

    public void Flush() => _ring.CompleteWrites();

    public void Dispose() => _ring.Dispose();
}
