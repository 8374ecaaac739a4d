using System.Diagnostics;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The optimizer's <see cref="IWeightWriteBack"/> onto a <see cref="WeightFile"/>: a few pool buffers, each one
/// sub-group of weights; the update of sub-group k fills one while k-1's write is in flight. Rent reuses the
/// buffer whose write finished first, waiting for it when all are in flight (counted as write wait).
/// Sub-groups must start on a page of the file (<see cref="PartitionedOptimizer.RoundSubGroupElementCount"/>).
/// </summary>
public sealed class WeightWriteBack : IWeightWriteBack, IDisposable
{
    internal const string BufferClass = "weight write-back";

    private readonly WeightFile _file;
    private readonly Entry[] _buffers;
    private readonly WeightCounters _counters;
    private Entry? _rented;
    private SubGroup? _rentedGroup;
    private long _sequence;

    public WeightWriteBack(WeightFile file, HostMemoryPool pool, WeightCounters counters)
    {
        _file = file;
        _counters = counters;
        _buffers = Enumerable.Range(0, pool.CountOf(BufferClass)).Select(_ => new Entry(pool.Rent(BufferClass))).ToArray();
        if (_buffers.Length == 0)
            throw new ArgumentException($"The pool has no '{BufferClass}' buffers; plan them with {nameof(AddToPlan)}.", nameof(pool));
    }

    public ElementType WeightType => _file.ElementType;

    /// <summary>Adds <paramref name="bufferCount"/> buffers of one sub-group of weights each to <paramref name="plan"/>.</summary>
    public static void AddToPlan(PoolPlan plan, long subGroupElementCount, ElementType type, int bufferCount = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferCount, 1);
        plan.Add(BufferClass, HostAlignment.RoundUpToPage(subGroupElementCount * type.ByteCount()), bufferCount);
    }

    public unsafe nint Rent(SubGroup group)
    {
        // A buffer rented and never committed belongs to an update that failed: its contents are abandoned.
        _rented = null;
        _rentedGroup = null;
        long needed = HostAlignment.RoundUpToPage(group.ElementCount * _file.ElementByteCount);
        Entry entry = _buffers.FirstOrDefault(b => b.Pending is null || b.Pending.IsCompleted) ?? _buffers.MinBy(b => b.Sequence)!;
        Complete(entry);
        if (entry.Lease.Buffer.CapacityByteCount < needed)
            throw new InvalidOperationException($"Sub-group {group.Index} needs {needed} bytes of weight buffer; the plan gave {entry.Lease.Buffer.CapacityByteCount}.");
        _rented = entry;
        _rentedGroup = group;
        return (nint)entry.Lease.Pointer;
    }

    public void Commit(SubGroup group)
    {
        if (_rented is null || !ReferenceEquals(_rentedGroup, group))
            throw new InvalidOperationException($"Sub-group {group.Index}'s weights were committed without being rented.");
        Entry entry = _rented;
        _rented = null;
        _rentedGroup = null;
        entry.Sequence = ++_sequence;
        entry.ByteCount = group.ElementCount * _file.ElementByteCount;
        entry.Pending = _file.WriteAsync(group.FirstElement, group.ElementCount, entry.Lease.Buffer).AsTask();
    }

    public void Flush()
    {
        foreach (Entry entry in _buffers.OrderBy(b => b.Sequence))
            Complete(entry);
    }

    public void Dispose()
    {
        foreach (Entry entry in _buffers)
        {
            try
            {
                entry.Pending?.Wait();
            }
            catch (AggregateException)
            {
                // Reported by the step that committed it, or irrelevant once that step failed.
            }
            entry.Lease.Dispose();
        }
    }

    /// <summary>Waits for <paramref name="entry"/>'s write (if any) and counts it; rethrows its failure.</summary>
    private void Complete(Entry entry)
    {
        if (entry.Pending is not Task pending)
            return;
        long start = Stopwatch.GetTimestamp();
        try
        {
            pending.GetAwaiter().GetResult();
        }
        finally
        {
            entry.Pending = null;
            _counters.AddWriteWait(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        _counters.AddBytesWritten(entry.ByteCount);
    }

    private sealed class Entry(HostLease lease)
    {
        public HostLease Lease { get; } = lease;
        public Task? Pending { get; set; }
        public long Sequence { get; set; }
        public long ByteCount { get; set; }
    }
}
