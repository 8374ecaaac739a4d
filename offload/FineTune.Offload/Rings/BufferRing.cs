using System.Diagnostics;
using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Rings;

/// <summary>
/// The one bounded set of pooled buffers that moves data between host memory and a drive: the optimizer's state
/// pipeline (read k+1 | update k | write k-1), the activation staging buffers, the parameter slots and the weight
/// write-back are each a ring. A ring never allocates: its buffers are pool leases given at construction, so host
/// memory is what the plan reserved, and a caller that needs a buffer when none is free waits for the oldest write
/// (back-pressure), never for more memory.
///
/// Each buffer is a <see cref="RingSlot"/> whose state changes only through the ring (checked transitions, see
/// <see cref="RingSlotState"/>). Victim choice (<see cref="TakeVictim"/>): a Free buffer, else the least recently used
/// Cached one, else (when allowed) the least recently used Ready one, else the oldest write in flight, waited for.
/// Bytes are counted when a transfer starts; waits are counted where the caller blocks.
///
/// Threading: one flow at a time calls the ring (the compute thread, or the optimizer's task); an I/O completion only
/// completes the task stored on its buffer, and the caller observes it on its own flow (Wait*, CompleteWrites), so
/// state is never changed from two threads. Disposing waits for every transfer in flight and returns the leases.
/// </summary>
public sealed class BufferRing : IDisposable
{
    private readonly RingSlot[] _slots;
    private long _clock;
    private long _writeSequence;
    private bool _disposed;

    public BufferRing(string name, IEnumerable<HostLease> leases, TransferCounters counters)
    {
        Name = name;
        Counters = counters;
        _slots = leases.Select((lease, i) => new RingSlot(lease, i)).ToArray();
        if (_slots.Length == 0)
            throw new ArgumentException($"The ring '{name}' needs at least one buffer.", nameof(leases));
    }

    /// <summary>What the ring carries ("optimizer states", "activation staging", ...), for messages.</summary>
    public string Name { get; }

    public TransferCounters Counters { get; }

    public IReadOnlyList<RingSlot> Slots => _slots;

    /// <summary>Bytes each buffer holds (the smallest lease: every buffer of a ring has one class).</summary>
    public long BufferByteCount => _slots.Min(s => s.Lease.Buffer.CapacityByteCount);

    /// <summary>The buffer holding or moving <paramref name="key"/>, in any state but Free; null when none.</summary>
    public RingSlot? Find(int key)
    {
        foreach (RingSlot slot in _slots)
            if (slot.State != RingSlotState.Free && slot.Key == key)
                return slot;
        return null;
    }

    /// <summary>
    /// A buffer whose contents nobody needs, made Free: Free first, then the least recently used Cached one, then
    /// (with <paramref name="evictReady"/>) the least recently used Ready one, then the oldest write in flight (waited
    /// for; its failure is thrown). Null when every buffer is Reading, InUse or (without evictReady) Ready.
    /// </summary>
    public RingSlot? TakeVictim(bool evictReady = false)
    {
        while (true)
        {
            RingSlot? victim = Pick(evictReady);
            if (victim is not null)
                return Evict(victim);
            RingSlot? oldest = OldestWrite();
            if (oldest is null)
                return null;
            WaitWrite(oldest);
        }
    }

    /// <summary>As <see cref="TakeVictim"/>, awaiting the write instead of blocking (the optimizer's task).</summary>
    public async ValueTask<RingSlot?> TakeVictimAsync(bool evictReady = false)
    {
        while (true)
        {
            RingSlot? victim = Pick(evictReady);
            if (victim is not null)
                return Evict(victim);
            RingSlot? oldest = OldestWrite();
            if (oldest is null)
                return null;
            await CompleteWriteAsync(oldest).ConfigureAwait(false);
        }
    }

    /// <summary>Starts <paramref name="read"/> into Free <paramref name="slot"/> for <paramref name="key"/>; the read returns the data's byte offset in the buffer.</summary>
    public void StartRead(RingSlot slot, int key, long byteCount, Func<AlignedBuffer, ValueTask<long>> read)
    {
        slot.MoveTo(RingSlotState.Reading, key);
        slot.Stamp = ++_clock;
        Counters.AddRead(byteCount);
        slot.Pending = read(slot.Lease.Buffer).AsTask();
    }

    /// <summary>Waits for <paramref name="slot"/>'s read (counted as read wait) and makes it Ready; a failed read frees it and rethrows.</summary>
    public void WaitRead(RingSlot slot)
    {
        if (slot.State != RingSlotState.Reading)
            return;
        var read = (Task<long>)slot.Pending!;
        if (!read.IsCompleted)
        {
            long start = Stopwatch.GetTimestamp();
            ((IAsyncResult)read).AsyncWaitHandle.WaitOne();
            Counters.AddReadWaitSince(start);
        }
        FinishRead(slot, read);
    }

    public async ValueTask WaitReadAsync(RingSlot slot)
    {
        if (slot.State != RingSlotState.Reading)
            return;
        var read = (Task<long>)slot.Pending!;
        if (!read.IsCompleted)
        {
            long start = Stopwatch.GetTimestamp();
            try { await read.ConfigureAwait(false); } catch (Exception) { } // observed in FinishRead
            Counters.AddReadWaitSince(start);
        }
        FinishRead(slot, read);
    }

    /// <summary>Takes Free <paramref name="slot"/> for the caller to fill with <paramref name="key"/>'s contents (InUse, one user).</summary>
    public void Fill(RingSlot slot, int key)
    {
        slot.MoveTo(RingSlotState.InUse, key);
        slot.Users = 1;
        slot.DataOffset = 0;
        slot.Stamp = ++_clock;
    }

    /// <summary>One more holder of a Ready, Cached or InUse buffer (waits for its read first).</summary>
    public void Use(RingSlot slot)
    {
        WaitRead(slot);
        int users = slot.State == RingSlotState.InUse ? slot.Users : 0;
        slot.MoveTo(RingSlotState.InUse, slot.Key);
        slot.Users = users + 1;
        slot.Stamp = ++_clock;
    }

    /// <summary>One holder fewer; the last one leaves the contents Cached (valid, evictable).</summary>
    public void Release(RingSlot slot)
    {
        if (slot.State != RingSlotState.InUse || slot.Users <= 0)
            throw new InvalidOperationException($"Ring '{Name}' buffer {slot.Index} holding {slot.Key} was released but is not in use ({slot.State}).");
        slot.Stamp = ++_clock;
        if (--slot.Users == 0)
            slot.MoveTo(RingSlotState.Cached, slot.Key);
    }

    /// <summary>Starts writing InUse <paramref name="slot"/> (one holder) to the drive; the buffer stays untouched until the write completes.</summary>
    public void StartWrite(RingSlot slot, long byteCount, Func<AlignedBuffer, ValueTask> write)
    {
        if (slot.State != RingSlotState.InUse || slot.Users != 1)
            throw new InvalidOperationException($"Ring '{Name}' buffer {slot.Index} holding {slot.Key} must be in use by one holder to be written ({slot.State}, {slot.Users}).");
        slot.MoveTo(RingSlotState.Writing, slot.Key);
        slot.WriteSequence = ++_writeSequence;
        slot.Stamp = ++_clock;
        Counters.AddWrite(byteCount);
        slot.Pending = write(slot.Lease.Buffer).AsTask();
    }

    /// <summary>Drops a Ready, Cached or InUse buffer's contents (they are stale or abandoned).</summary>
    public void Discard(RingSlot slot) => slot.MoveTo(RingSlotState.Free, -1);

    /// <summary>Waits for every write in flight, oldest first (counted as write wait); rethrows the first failure after all ended.</summary>
    public void CompleteWrites()
    {
        Exception? first = null;
        foreach (RingSlot slot in _slots.Where(s => s.State == RingSlotState.Writing).OrderBy(s => s.WriteSequence).ToList())
        {
            try { WaitWrite(slot); }
            catch (Exception error) { first ??= error; }
        }
        if (first is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }

    public async ValueTask CompleteWritesAsync()
    {
        Exception? first = null;
        foreach (RingSlot slot in _slots.Where(s => s.State == RingSlotState.Writing).OrderBy(s => s.WriteSequence).ToList())
        {
            try { await CompleteWriteAsync(slot).ConfigureAwait(false); }
            catch (Exception error) { first ??= error; }
        }
        if (first is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }

    /// <summary>
    /// Forgets every Ready and Cached buffer (the drive's copy changed), waiting for reads in flight first; throws
    /// while a buffer is held. Writes in flight are left to finish (their contents are what the drive gets).
    /// </summary>
    public void Invalidate()
    {
        foreach (RingSlot slot in _slots)
        {
            if (slot.State == RingSlotState.InUse)
                throw new InvalidOperationException($"Ring '{Name}' buffer {slot.Index} holding {slot.Key} is still in use; release it before its contents change.");
            if (slot.State == RingSlotState.Reading)
                WaitQuietly(slot);
            if (slot.State is RingSlotState.Ready or RingSlotState.Cached)
                slot.MoveTo(RingSlotState.Free, -1);
        }
    }

    /// <summary>
    /// After a failure: waits until no transfer is in flight on any buffer (so the pool may free them), swallowing the
    /// transfers' own errors, which the failed operation has already reported or superseded. Finished reads become
    /// Ready, finished writes Cached, failed ones Free.
    /// </summary>
    public void Quiesce()
    {
        foreach (RingSlot slot in _slots)
            WaitQuietly(slot);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (RingSlot slot in _slots)
            WaitQuietly(slot);
        foreach (RingSlot slot in _slots)
            slot.Lease.Dispose();
    }

    private RingSlot? Pick(bool evictReady)
    {
        RingSlot? cached = null, ready = null;
        foreach (RingSlot slot in _slots)
        {
            switch (slot.State)
            {
                case RingSlotState.Free:
                    return slot;
                case RingSlotState.Cached when cached is null || slot.Stamp < cached.Stamp:
                    cached = slot;
                    break;
                case RingSlotState.Ready when evictReady && (ready is null || slot.Stamp < ready.Stamp):
                    ready = slot;
                    break;
            }
        }
        return cached ?? ready;
    }

    private static RingSlot Evict(RingSlot slot)
    {
        if (slot.State != RingSlotState.Free)
            slot.MoveTo(RingSlotState.Free, -1);
        return slot;
    }

    private RingSlot? OldestWrite()
    {
        RingSlot? oldest = null;
        foreach (RingSlot slot in _slots)
            if (slot.State == RingSlotState.Writing && (oldest is null || slot.WriteSequence < oldest.WriteSequence))
                oldest = slot;
        return oldest;
    }

    private void FinishRead(RingSlot slot, Task<long> read)
    {
        slot.Pending = null;
        if (!read.IsCompletedSuccessfully)
        {
            slot.MoveTo(RingSlotState.Free, -1);
            read.GetAwaiter().GetResult(); // rethrows the read's failure
        }
        slot.DataOffset = read.Result;
        slot.MoveTo(RingSlotState.Ready, slot.Key);
    }

    /// <summary>Waits for <paramref name="slot"/>'s write (counted as write wait) and leaves it Cached; a failed write frees it and rethrows.</summary>
    public void WaitWrite(RingSlot slot)
    {
        if (slot.State != RingSlotState.Writing)
            return;
        Task write = slot.Pending!;
        if (!write.IsCompleted)
        {
            long start = Stopwatch.GetTimestamp();
            ((IAsyncResult)write).AsyncWaitHandle.WaitOne();
            Counters.AddWriteWaitSince(start);
        }
        FinishWrite(slot, write);
    }

    private async ValueTask CompleteWriteAsync(RingSlot slot)
    {
        Task write = slot.Pending!;
        if (!write.IsCompleted)
        {
            long start = Stopwatch.GetTimestamp();
            try { await write.ConfigureAwait(false); } catch (Exception) { } // observed in FinishWrite
            Counters.AddWriteWaitSince(start);
        }
        FinishWrite(slot, write);
    }

    private static void FinishWrite(RingSlot slot, Task write)
    {
        slot.Pending = null;
        if (!write.IsCompletedSuccessfully)
        {
            slot.MoveTo(RingSlotState.Free, -1);
            write.GetAwaiter().GetResult(); // rethrows the write's failure
        }
        slot.MoveTo(RingSlotState.Cached, slot.Key);
    }

    private static void WaitQuietly(RingSlot slot)
    {
        if (slot.Pending is not Task pending)
            return;
        try
        {
            pending.Wait();
        }
        catch (AggregateException)
        {
            // reported by whoever waits on the slot properly, or irrelevant after a failure
        }
        if (slot.State == RingSlotState.Reading)
        {
            slot.Pending = null;
            if (pending.IsCompletedSuccessfully)
            {
                slot.DataOffset = ((Task<long>)pending).Result;
                slot.MoveTo(RingSlotState.Ready, slot.Key);
            }
            else
            {
                slot.MoveTo(RingSlotState.Free, -1);
            }
        }
        else if (slot.State == RingSlotState.Writing)
        {
            slot.Pending = null;
            slot.MoveTo(pending.IsCompletedSuccessfully ? RingSlotState.Cached : RingSlotState.Free, slot.Key);
        }
    }
}
