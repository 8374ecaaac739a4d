using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Streams sub-group states through a bounded set of pool buffers: while sub-group k is updated, k+1 is being read
/// and k-1 written, reads and writes on separate queues of the store. A buffer is reused only after its write
/// completed (state OnDisk); when none is free the pipeline waits for the oldest write, which bounds host memory
/// to the buffers the plan gave it. The last sub-group may be smaller and then uses its own exact-size buffer.
/// Buffer choice and every state change except ReadInFlight -> Ready happen on the caller's flow; a read's
/// completion touches only its own buffer, and the caller awaits it before looking at that buffer again.
/// </summary>
internal sealed partial class SwapPipeline
{
    private readonly ISwapStore _store;
    private readonly IReadOnlyList<SubGroup> _groups;
    private readonly List<SwapSlot> _fullSlots;
    private readonly SwapSlot? _tailSlot;
    private readonly long _fullElementCount;
    private readonly OptimizerCounters _counters;
    private long _writeSequence;
    private readonly uint[]? _extentCrcs;

    public SwapPipeline(ISwapStore store, IReadOnlyList<SubGroup> groups, List<SwapSlot> fullSlots, SwapSlot? tailSlot,
        long fullElementCount, OptimizerCounters counters, bool verifyIntegrity = false)
    {
        _extentCrcs = verifyIntegrity ? new uint[groups.Count] : null;
        _store = store;
        _groups = groups;
        _fullSlots = fullSlots;
        _tailSlot = tailSlot;
        _fullElementCount = fullElementCount;
        _counters = counters;
    }

    /// <summary>read k+1 | work on k | write k-1, for every sub-group in order.</summary>
    public async Task UpdateAllAsync(Action<SubGroup, HostLease> update)
    {
        Task<SwapSlot>? next = _groups.Count > 0 ? await StartReadAsync(_groups[0]).ConfigureAwait(false) : null;
        for (int k = 0; k < _groups.Count; k++)
        {
            long waitStart = Stopwatch.GetTimestamp();
            SwapSlot slot = await next!.ConfigureAwait(false);
            _counters.ReadWaitSeconds += Stopwatch.GetElapsedTime(waitStart).TotalSeconds;
            _counters.BytesRead += _store.ExtentByteCount(k);
            next = k + 1 < _groups.Count ? await StartReadAsync(_groups[k + 1]).ConfigureAwait(false) : null;
            slot.MoveTo(SwapBufferState.Filling, k);
            update(_groups[k], slot.Lease);
            StartWrite(slot, k);
        }
        await DrainAsync().ConfigureAwait(false);
    }

    /// <summary>Fills every sub-group's buffer (initial states, checkpoint load) and writes it out.</summary>
    public async Task FillAllAsync(Action<SubGroup, HostLease> fill)
    {
        foreach (SubGroup group in _groups)
        {
            SwapSlot slot = await AcquireAsync(group).ConfigureAwait(false);
            if (slot.State == SwapBufferState.OnDisk)
                slot.MoveTo(SwapBufferState.Free, -1);
            slot.MoveTo(SwapBufferState.Filling, group.Index);
            fill(group, slot.Lease);
            StartWrite(slot, group.Index);
        }
        await DrainAsync().ConfigureAwait(false);
    }

    /// <summary>Reads every sub-group (checkpoint save), prefetching the next one while <paramref name="visit"/> runs.</summary>
    public async Task VisitAllAsync(Action<SubGroup, HostLease> visit)
    {
        Task<SwapSlot>? next = _groups.Count > 0 ? await StartReadAsync(_groups[0]).ConfigureAwait(false) : null;
        for (int k = 0; k < _groups.Count; k++)
        {
            SwapSlot slot = await next!.ConfigureAwait(false);
            _counters.BytesRead += _store.ExtentByteCount(k);
            next = k + 1 < _groups.Count ? await StartReadAsync(_groups[k + 1]).ConfigureAwait(false) : null;
            visit(_groups[k], slot.Lease);
            slot.MoveTo(SwapBufferState.Free, -1);
        }
    }

    /// <summary>Picks a buffer for <paramref name="group"/> (waiting for a write if needed) and starts the read.</summary>
    private async Task<Task<SwapSlot>> StartReadAsync(SubGroup group)
    {
        SwapSlot slot = await AcquireAsync(group).ConfigureAwait(false);
        slot.MoveTo(SwapBufferState.ReadInFlight, group.Index);
        Task<SwapSlot> read = FinishReadAsync(slot, group.Index);
        slot.PendingRead = read;
        return read;
    }

    private async Task<SwapSlot> FinishReadAsync(SwapSlot slot, int subGroup)
    {
        await _store.ReadAsync(subGroup, slot.Lease).ConfigureAwait(false);
        if (_extentCrcs is not null)
        {
            uint crc = ExtentCrc(slot.Lease, _groups[subGroup]);
            if (crc != _extentCrcs[subGroup])
                throw new IOException($"Swap extent {subGroup} (sub-group {subGroup}'s states, {_store.Description}) read back with CRC32C {crc:x8}, " +
                    $"written with {_extentCrcs[subGroup]:x8}: the drive returned corrupt data.");
        }
        slot.MoveTo(SwapBufferState.Ready, subGroup);
        return slot;
    }

    private static unsafe uint ExtentCrc(HostLease lease, SubGroup group)
    {
        uint crc = 0;
        const long chunk = 1 << 30;
        for (long done = 0; done < group.StateByteCount; done += chunk)
            crc = FineTune.IO.Crc32C.Append(crc, new ReadOnlySpan<byte>(lease.Pointer + done, (int)Math.Min(chunk, group.StateByteCount - done)));
        return crc;
    }

    private void StartWrite(SwapSlot slot, int subGroup)
    {
        if (_extentCrcs is not null)
            _extentCrcs[subGroup] = ExtentCrc(slot.Lease, _groups[subGroup]);
        slot.MoveTo(SwapBufferState.WriteInFlight, subGroup);
        slot.WriteSequence = ++_writeSequence;
        slot.PendingWrite = _store.WriteAsync(subGroup, slot.Lease).AsTask();
    }

    /// <summary>A buffer of the right class for <paramref name="group"/> whose contents nobody needs (Free or OnDisk).</summary>
    private async Task<SwapSlot> AcquireAsync(SubGroup group)
    {
        bool tail = group.ElementCount != _fullElementCount && _tailSlot is not null;
        IReadOnlyList<SwapSlot> candidates = tail ? new[] { _tailSlot! } : _fullSlots;
        while (true)
        {
            foreach (SwapSlot slot in candidates)
                if (slot.State is SwapBufferState.Free or SwapBufferState.OnDisk)
                    return slot;
            SwapSlot? oldest = candidates.Where(s => s.State == SwapBufferState.WriteInFlight).MinBy(s => s.WriteSequence);
            if (oldest is null)
                throw new InvalidOperationException($"No pipeline buffer can take sub-group {group.Index}: every buffer is being read or updated.");
            await CompleteWriteAsync(oldest).ConfigureAwait(false);
        }
    }

    private async Task CompleteWriteAsync(SwapSlot slot)
    {
        long waitStart = Stopwatch.GetTimestamp();
        await slot.PendingWrite!.ConfigureAwait(false);
        _counters.WriteWaitSeconds += Stopwatch.GetElapsedTime(waitStart).TotalSeconds;
        _counters.BytesWritten += _store.ExtentByteCount(slot.SubGroup);
        slot.PendingWrite = null;
        slot.MoveTo(SwapBufferState.OnDisk, slot.SubGroup);
    }

    /// <summary>
    /// After a failure: waits until no I/O is in flight on any buffer (so the pool may free them), swallowing the
    /// I/O's own errors, which the failed step has already reported or superseded.
    /// </summary>
    public void Quiesce()
    {
        foreach (SwapSlot slot in _fullSlots.Append(_tailSlot).OfType<SwapSlot>())
        {
            foreach (Task? pending in new[] { slot.PendingRead, slot.PendingWrite })
            {
                try
                {
                    pending?.Wait();
                }
                catch (AggregateException)
                {
                    // Reported by the step that started it, or irrelevant once that step failed.
                }
            }
        }
    }

    /// <summary>Waits for every write, leaving all buffers OnDisk or Free.</summary>
    public async Task DrainAsync()
    {
        foreach (SwapSlot slot in _fullSlots.Append(_tailSlot).OfType<SwapSlot>().Where(s => s.State == SwapBufferState.WriteInFlight).OrderBy(s => s.WriteSequence).ToList())
            await CompleteWriteAsync(slot).ConfigureAwait(false);
    }
}
