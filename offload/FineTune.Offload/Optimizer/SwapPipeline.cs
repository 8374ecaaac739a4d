using FineTune.Offload.Memory;
using FineTune.Offload.Rings;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Streams sub-group states through a bounded <see cref="BufferRing"/>: while sub-group k is updated, the next one in
/// the given order is being read and k-1 written, reads and writes on the store's separate queues. A buffer is
/// reused only after its write completed; when none is free the pipeline waits for the oldest write, which bounds host
/// memory to the buffers the plan gave it. A smaller last sub-group uses a ring of its own exact-size buffer.
/// The order is the caller's (ascending for a plain step, descending when updates follow backward), and each update
/// may first await a readiness decision (its gradients becoming final, or the global norm): the next read is started
/// before that wait, so state prefetch overlaps the rest of backward. A decision of false abandons the step: buffers
/// already read are dropped unchanged (nothing is written), so a skipped step leaves swap exactly as it was.
/// With integrity checking, each extent's CRC-32C is kept at write and verified at read. With
/// <see cref="RecordChecksums"/> on, each write keeps its extent's CRC-32C for a checkpoint that takes the swap file as
/// it stands (<see cref="TryGetChecksum"/>).
/// </summary>
internal sealed class SwapPipeline
{
    private readonly ISwapStore _store;
    private readonly IReadOnlyList<SubGroup> _groups;
    private readonly BufferRing? _full;
    private readonly BufferRing? _tail;
    private readonly long _fullElementCount;
    private readonly bool _verifyIntegrity;
    private readonly uint[] _extentCrcs;
    private readonly bool[] _crcCurrent;    // whether _extentCrcs[g] is the CRC of what was last written to g

    public SwapPipeline(ISwapStore store, IReadOnlyList<SubGroup> groups, BufferRing? full, BufferRing? tail, long fullElementCount, bool verifyIntegrity = false)
    {
        _verifyIntegrity = verifyIntegrity;
        _extentCrcs = new uint[groups.Count];
        _crcCurrent = new bool[groups.Count];
        _store = store;
        _groups = groups;
        _full = full;
        _tail = tail;
        _fullElementCount = fullElementCount;
    }

    /// <summary>The store the states rest in.</summary>
    public ISwapStore Store => _store;

    /// <summary>Keep each written extent's CRC-32C (turned on for the steps before a checkpoint).</summary>
    public bool RecordChecksums { get; set; }

    /// <summary>The CRC-32C of sub-group <paramref name="group"/>'s states as last written, when it was recorded.</summary>
    public bool TryGetChecksum(int group, out uint crc)
    {
        crc = _extentCrcs[group];
        return _crcCurrent[group];
    }

    /// <summary>read k+1 | update k | write k-1 over every sub-group in ascending order.</summary>
    public async Task UpdateAllAsync(Action<SubGroup, HostLease> update) =>
        await UpdateInOrderAsync(_groups, _ => Task.FromResult(true), update).ConfigureAwait(false);

    /// <summary>
    /// The pipeline over <paramref name="order"/>; before updating each sub-group it awaits
    /// <paramref name="waitUntilReady"/>. Returns false (nothing more updated or written) when that says false.
    /// </summary>
    public async Task<bool> UpdateInOrderAsync(IReadOnlyList<SubGroup> order, Func<SubGroup, Task<bool>> waitUntilReady, Action<SubGroup, HostLease> update)
    {
        RingSlot? next = order.Count > 0 ? await StartReadAsync(order[0]).ConfigureAwait(false) : null;
        for (int k = 0; k < order.Count; k++)
        {
            SubGroup group = order[k];
            RingSlot slot = next!;
            BufferRing ring = RingFor(group);
            await ring.WaitReadAsync(slot).ConfigureAwait(false);
            Verify(group, slot);
            next = k + 1 < order.Count ? await StartReadAsync(order[k + 1]).ConfigureAwait(false) : null;
            if (!await waitUntilReady(group).ConfigureAwait(false))
            {
                ring.Discard(slot);
                if (next is not null)
                {
                    BufferRing nextRing = RingFor(order[k + 1]);
                    await nextRing.WaitReadAsync(next).ConfigureAwait(false);
                    nextRing.Discard(next);
                }
                await DrainAsync().ConfigureAwait(false);
                return false;
            }
            ring.Use(slot);
            update(group, slot.Lease);
            StartWrite(group, slot);
        }
        await DrainAsync().ConfigureAwait(false);
        return true;
    }

    /// <summary>Fills every sub-group's buffer (initial states, checkpoint load) and writes it out.</summary>
    public async Task FillAllAsync(Action<SubGroup, HostLease> fill)
    {
        foreach (SubGroup group in _groups)
        {
            BufferRing ring = RingFor(group);
            RingSlot slot = await TakeAsync(ring, group).ConfigureAwait(false);
            ring.Fill(slot, group.Index);
            fill(group, slot.Lease);
            StartWrite(group, slot);
        }
        await DrainAsync().ConfigureAwait(false);
    }

    /// <summary>Reads every sub-group in order (checkpoint save), prefetching the next one while <paramref name="visit"/> runs.</summary>
    public Task VisitAllAsync(Action<SubGroup, HostLease> visit) => VisitAsync(_groups, visit);

    /// <summary>Reads <paramref name="groups"/> in the given order, prefetching the next one while <paramref name="visit"/> runs.</summary>
    public async Task VisitAsync(IReadOnlyList<SubGroup> groups, Action<SubGroup, HostLease> visit)
    {
        RingSlot? next = groups.Count > 0 ? await StartReadAsync(groups[0]).ConfigureAwait(false) : null;
        for (int k = 0; k < groups.Count; k++)
        {
            SubGroup group = groups[k];
            RingSlot slot = next!;
            BufferRing ring = RingFor(group);
            await ring.WaitReadAsync(slot).ConfigureAwait(false);
            Verify(group, slot);
            next = k + 1 < groups.Count ? await StartReadAsync(groups[k + 1]).ConfigureAwait(false) : null;
            ring.Use(slot);
            visit(group, slot.Lease);
            ring.Release(slot);
            ring.Discard(slot);
        }
    }

    /// <summary>After a failure: waits until no I/O is in flight on any buffer, swallowing the I/O's own errors.</summary>
    public void Quiesce()
    {
        _full?.Quiesce();
        _tail?.Quiesce();
    }

    /// <summary>Waits for every write, oldest first.</summary>
    public async Task DrainAsync()
    {
        if (_full is not null)
            await _full.CompleteWritesAsync().ConfigureAwait(false);
        if (_tail is not null)
            await _tail.CompleteWritesAsync().ConfigureAwait(false);
    }

    private BufferRing RingFor(SubGroup group) => (group.ElementCount != _fullElementCount && _tail is not null ? _tail : _full)
        ?? throw new InvalidOperationException($"No pipeline ring holds sub-group {group.Index}'s size.");

    private async Task<RingSlot> StartReadAsync(SubGroup group)
    {
        BufferRing ring = RingFor(group);
        RingSlot slot = await TakeAsync(ring, group).ConfigureAwait(false);
        ring.StartRead(slot, group.Index, _store.ExtentByteCount(group.Index), async _ =>
        {
            await _store.ReadAsync(group.Index, slot.Lease).ConfigureAwait(false);
            return 0L;
        });
        return slot;
    }

    private static async Task<RingSlot> TakeAsync(BufferRing ring, SubGroup group) =>
        await ring.TakeVictimAsync().ConfigureAwait(false)
            ?? throw new InvalidOperationException($"No pipeline buffer can take sub-group {group.Index}: every buffer is being read or updated.");

    private void StartWrite(SubGroup group, RingSlot slot)
    {
        _crcCurrent[group.Index] = _verifyIntegrity || RecordChecksums;
        if (_crcCurrent[group.Index])
            _extentCrcs[group.Index] = ExtentCrc(slot.Lease, group);
        RingFor(group).StartWrite(slot, _store.ExtentByteCount(group.Index), _ => _store.WriteAsync(group.Index, slot.Lease));
    }

    private void Verify(SubGroup group, RingSlot slot)
    {
        if (!_verifyIntegrity)
            return;
        uint crc = ExtentCrc(slot.Lease, group);
        if (crc != _extentCrcs[group.Index])
            throw new IOException($"Swap extent {group.Index} (sub-group {group.Index}'s states, {_store.Description}) read back with CRC32C {crc:x8}, " +
                $"written with {_extentCrcs[group.Index]:x8}: the drive returned corrupt data.");
    }

    /// <summary>The CRC-32C of <paramref name="group"/>'s states in <paramref name="lease"/>.</summary>
    internal static unsafe uint ExtentCrc(HostLease lease, SubGroup group)
    {
        uint crc = 0;
        const long chunk = 1 << 30;
        for (long done = 0; done < group.StateByteCount; done += chunk)
            crc = FineTune.IO.Crc32C.Append(crc, new ReadOnlySpan<byte>(lease.Pointer + done, (int)Math.Min(chunk, group.StateByteCount - done)));
        return crc;
    }
}
