using FineTune.Offload.Memory;
using FineTune.Offload.Rings;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The resident part of offloaded weights: one <see cref="BufferRing"/> per slot class (decoder layers; a large
/// embedding or LM head), each buffer holding the page window of one <see cref="WeightRange"/> read from a
/// <see cref="WeightFile"/>. <see cref="Acquire"/> returns the range's first element, reading it first unless it is
/// still resident or already being prefetched (the wait is counted); <see cref="Prefetch"/> starts a read into a free
/// slot and returns at once, so the weights of layer i+1 arrive while layer i computes. A slot is reused least recently
/// used first, never while acquired, and a prefetch never evicts another prefetch nobody has used yet (it is skipped
/// instead). <see cref="Invalidate"/> drops every resident copy (call it after the optimizer rewrote the file).
/// Not thread-safe: one caller (the compute thread); I/O completions only finish tasks.
/// </summary>
public sealed class WeightSlots : IDisposable
{
    private readonly WeightFile _file;
    private readonly IReadOnlyList<WeightRange> _ranges;
    private readonly BufferRing[] _rings;

    public WeightSlots(WeightFile file, HostMemoryPool pool, IReadOnlyList<WeightRange> ranges, IReadOnlyList<WeightSlotClass> classes, TransferCounters counters)
    {
        _file = file;
        _ranges = ranges;
        Counters = counters;
        for (int i = 0; i < ranges.Count; i++)
        {
            WeightRange range = ranges[i];
            if (range.SlotClass < 0 || range.SlotClass >= classes.Count || pool.CountOf(classes[range.SlotClass].Kind) == 0)
                throw new ArgumentException($"Weight range {i} names slot class {range.SlotClass}, which has no slots.", nameof(ranges));
            long window = file.Window(range.First, range.Count).ByteCount;
            long slotBytes = pool.ByteCountOf(classes[range.SlotClass].Kind);
            if (slotBytes < window)
                throw new ArgumentException($"Weight range {i} needs a {window}-byte slot; class '{classes[range.SlotClass].Kind.Describe()}' has {slotBytes}-byte ones.", nameof(ranges));
        }
        var rings = new List<BufferRing>();
        try
        {
            foreach (WeightSlotClass slotClass in classes)
                rings.Add(new BufferRing(slotClass.Kind.Describe(), pool.RentAll(slotClass.Kind), counters));
        }
        catch
        {
            foreach (BufferRing ring in rings)
                ring.Dispose();
            throw;
        }
        _rings = rings.ToArray();
    }

    public TransferCounters Counters { get; }

    /// <summary>Adds each class's slots, sized for the largest window among the ranges of that class, to <paramref name="plan"/>.</summary>
    public static void AddToPlan(PoolPlan plan, int elementByteCount, IReadOnlyList<WeightRange> ranges, IReadOnlyList<WeightSlotClass> classes)
    {
        for (int c = 0; c < classes.Count; c++)
        {
            long largest = ranges.Where(r => r.SlotClass == c).Select(r => WindowByteCount(r, elementByteCount)).DefaultIfEmpty(0).Max();
            if (largest > 0 && classes[c].Count > 0)
                plan.Add(classes[c].Kind, largest, classes[c].Count);
        }
    }

    /// <summary>Bytes of the page window holding <paramref name="range"/> (what one read moves).</summary>
    public static long WindowByteCount(WeightRange range, int elementByteCount)
    {
        long start = range.First * elementByteCount / HostAlignment.PageByteCount * HostAlignment.PageByteCount;
        return HostAlignment.RoundUpToPage((range.First + range.Count) * elementByteCount) - start;
    }

    /// <summary>Starts reading <paramref name="range"/> if it is not resident and a slot is free for it; never waits.</summary>
    public void Prefetch(int range)
    {
        if (range < 0 || range >= _ranges.Count)
            return;
        BufferRing ring = RingOf(range);
        if (ring.Find(range) is not null)
            return;
        if (ring.TakeVictim(evictReady: false) is RingSlot slot)
            StartRead(ring, slot, range);
    }

    /// <summary>The address of <paramref name="range"/>'s first element in host memory, valid until the matching <see cref="Release"/>.</summary>
    public unsafe nint Acquire(int range)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(range);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(range, _ranges.Count);
        BufferRing ring = RingOf(range);
        RingSlot? slot = ring.Find(range);
        if (slot is not null)
        {
            Counters.AddHit();
        }
        else
        {
            slot = ring.TakeVictim(evictReady: true);
            if (slot is null && ring.Slots.FirstOrDefault(s => s.State == RingSlotState.Reading) is RingSlot reading)
            {
                ring.WaitRead(reading); // an unused prefetch still in flight: let it land, then take its slot
                slot = ring.TakeVictim(evictReady: true);
            }
            if (slot is null)
                throw new InvalidOperationException($"Weight range {range} needs a slot, but every slot of its class is acquired; release one first or plan more slots.");
            StartRead(ring, slot, range);
        }
        ring.Use(slot);
        return (nint)(slot.Lease.Pointer + slot.DataOffset);
    }

    public void Release(int range)
    {
        BufferRing ring = RingOf(range);
        RingSlot slot = ring.Find(range) is { State: RingSlotState.InUse } found ? found : throw new InvalidOperationException($"Weight range {range} is released but was not acquired.");
        ring.Release(slot);
    }

    /// <summary>Forgets every resident range that nobody holds (after the file was rewritten), waiting for reads in flight.</summary>
    public void Invalidate()
    {
        foreach (BufferRing ring in _rings)
            ring.Invalidate();
    }

    public void Dispose()
    {
        foreach (BufferRing ring in _rings)
            ring.Dispose();
    }

    private BufferRing RingOf(int range) => _rings[_ranges[range].SlotClass];

    private void StartRead(BufferRing ring, RingSlot slot, int range)
    {
        WeightRange r = _ranges[range];
        ring.StartRead(slot, range, WindowByteCount(r, _file.ElementByteCount), buffer => _file.ReadAsync(r.First, r.Count, buffer));
    }
}
