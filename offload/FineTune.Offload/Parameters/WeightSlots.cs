using System.Diagnostics;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The resident part of offloaded weights: a few pool buffers (slots), each holding the page window of one
/// <see cref="WeightRange"/> read from a <see cref="WeightFile"/>. <see cref="Acquire"/> returns the range's first
/// element, reading it first unless it is still resident or already being prefetched (the wait is counted);
/// <see cref="Prefetch"/> starts a read into a free slot and returns at once, so the weights of layer i+1 arrive
/// while layer i computes. A slot is reused least-recently-used first, never while acquired, and a prefetch never
/// evicts another prefetch nobody has used yet (it is skipped instead). <see cref="Invalidate"/> drops every
/// resident copy (call it after the optimizer rewrote the file). Not thread-safe: one caller (the compute thread);
/// I/O completions only finish tasks.
/// </summary>
public sealed class WeightSlots : IDisposable
{
    private readonly WeightFile _file;
    private readonly IReadOnlyList<WeightRange> _ranges;
    private readonly Slot[][] _slotsByClass;
    private long _clock;

    public WeightSlots(WeightFile file, HostMemoryPool pool, IReadOnlyList<WeightRange> ranges, IReadOnlyList<WeightSlotClass> classes, WeightCounters counters)
    {
        _file = file;
        _ranges = ranges;
        Counters = counters;
        for (int i = 0; i < ranges.Count; i++)
        {
            WeightRange range = ranges[i];
            if (range.SlotClass < 0 || range.SlotClass >= classes.Count || pool.CountOf(classes[range.SlotClass].Name) == 0)
                throw new ArgumentException($"Weight range {i} names slot class {range.SlotClass}, which has no slots.", nameof(ranges));
            long window = file.Window(range.First, range.Count).ByteCount;
            long slotBytes = pool.ByteCountOf(classes[range.SlotClass].Name);
            if (slotBytes < window)
                throw new ArgumentException($"Weight range {i} needs a {window}-byte slot; class '{classes[range.SlotClass].Name}' has {slotBytes}-byte ones.", nameof(ranges));
        }
        var rented = new List<Slot[]>();
        try
        {
            foreach (WeightSlotClass slotClass in classes)
                rented.Add(Enumerable.Range(0, pool.CountOf(slotClass.Name)).Select(_ => new Slot(pool.Rent(slotClass.Name))).ToArray());
        }
        catch
        {
            foreach (Slot slot in rented.SelectMany(s => s))
                slot.Lease.Dispose();
            throw;
        }
        _slotsByClass = rented.ToArray();
    }

    public WeightCounters Counters { get; }

    /// <summary>Adds each class's slots, sized for the largest window among the ranges of that class, to <paramref name="plan"/>.</summary>
    public static void AddToPlan(PoolPlan plan, int elementByteCount, IReadOnlyList<WeightRange> ranges, IReadOnlyList<WeightSlotClass> classes)
    {
        for (int c = 0; c < classes.Count; c++)
        {
            long largest = ranges.Where(r => r.SlotClass == c).Select(r => WindowByteCount(r, elementByteCount)).DefaultIfEmpty(0).Max();
            if (largest > 0 && classes[c].Count > 0)
                plan.Add(classes[c].Name, largest, classes[c].Count);
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
        if (range < 0 || range >= _ranges.Count || Find(range) is not null)
            return;
        if (Victim(_ranges[range].SlotClass, forPrefetch: true) is Slot slot)
            Load(slot, range, prefetched: true);
    }

    /// <summary>The address of <paramref name="range"/>'s first element in host memory, valid until the matching <see cref="Release"/>.</summary>
    public unsafe nint Acquire(int range)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(range);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(range, _ranges.Count);
        Slot? slot = Find(range);
        if (slot is not null)
            Counters.AddHit();
        else
        {
            slot = Victim(_ranges[range].SlotClass, forPrefetch: false)
                ?? throw new InvalidOperationException($"Weight range {range} needs a slot, but every slot of its class is acquired; release one first or plan more slots.");
            Load(slot, range, prefetched: false);
        }
        slot.Users++;
        slot.Prefetched = false;
        slot.Stamp = ++_clock;
        Task<long> load = slot.Load!;
        if (!load.IsCompleted)
        {
            long start = Stopwatch.GetTimestamp();
            ((IAsyncResult)load).AsyncWaitHandle.WaitOne();
            Counters.AddReadWait(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        long offset;
        try
        {
            offset = load.GetAwaiter().GetResult();
        }
        catch
        {
            slot.Users--;
            slot.Clear();
            throw;
        }
        return (nint)(slot.Lease.Pointer + offset);
    }

    public void Release(int range)
    {
        Slot slot = Find(range) is { Users: > 0 } found ? found : throw new InvalidOperationException($"Weight range {range} is released but was not acquired.");
        slot.Users--;
        slot.Stamp = ++_clock;
    }

    /// <summary>Forgets every resident range that nobody holds (after the file was rewritten), waiting for reads in flight.</summary>
    public void Invalidate()
    {
        foreach (Slot slot in _slotsByClass.SelectMany(s => s))
        {
            if (slot.Users > 0)
                throw new InvalidOperationException($"Weight range {slot.Range} is still acquired; release it before the weights change.");
            slot.WaitQuietly();
            slot.Clear();
        }
    }

    public void Dispose()
    {
        foreach (Slot slot in _slotsByClass.SelectMany(s => s))
        {
            slot.WaitQuietly();
            slot.Lease.Dispose();
        }
    }

    private Slot? Find(int range)
    {
        foreach (Slot slot in _slotsByClass[_ranges[range].SlotClass])
            if (slot.Range == range)
                return slot;
        return null;
    }

    /// <summary>An empty slot, else the least recently used one nobody holds; a prefetch takes none holding an unused prefetch.</summary>
    private Slot? Victim(int slotClass, bool forPrefetch)
    {
        Slot? best = null;
        foreach (Slot slot in _slotsByClass[slotClass])
        {
            if (slot.Users > 0 || (forPrefetch && slot.Prefetched))
                continue;
            if (slot.Range < 0)
                return slot;
            if (best is null || slot.Stamp < best.Stamp)
                best = slot;
        }
        best?.WaitQuietly();
        return best;
    }

    private void Load(Slot slot, int range, bool prefetched)
    {
        WeightRange r = _ranges[range];
        slot.Range = range;
        slot.Prefetched = prefetched;
        slot.Stamp = ++_clock;
        Counters.AddRead(WindowByteCount(r, _file.ElementByteCount));
        slot.Load = _file.ReadAsync(r.First, r.Count, slot.Lease.Buffer).AsTask();
    }

    private sealed class Slot(HostLease lease)
    {
        public HostLease Lease { get; } = lease;
        public int Range { get; set; } = -1;
        public Task<long>? Load { get; set; }
        public int Users { get; set; }
        public bool Prefetched { get; set; }
        public long Stamp { get; set; }

        public void Clear()
        {
            Range = -1;
            Load = null;
            Prefetched = false;
        }

        /// <summary>Waits for a read in flight into this slot; its failure belongs to whoever acquires the range (or nobody).</summary>
        public void WaitQuietly()
        {
            try
            {
                Load?.Wait();
            }
            catch (AggregateException)
            {
                Clear();
            }
        }
    }
}
