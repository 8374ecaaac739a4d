using FineTune.Offload.Memory;

namespace FineTune.Offload.Rings;

/// <summary>
/// One buffer of a <see cref="BufferRing"/>: its pool lease, its <see cref="RingSlotState"/>, the key of what it
/// holds (a sub-group, a checkpoint, a weight range; -1 when nothing), how many callers hold it, and the I/O pending
/// on it. State changes go through the ring, which checks them; callers only read these properties.
/// </summary>
public sealed class RingSlot
{
    internal RingSlot(HostLease lease, int index)
    {
        Lease = lease;
        Index = index;
    }

    public HostLease Lease { get; }

    /// <summary>Position in the ring (stable; for messages).</summary>
    public int Index { get; }

    public RingSlotState State { get; private set; } = RingSlotState.Free;

    /// <summary>What the buffer holds or is moving; -1 when Free.</summary>
    public int Key { get; private set; } = -1;

    /// <summary>Callers holding it (InUse only; a weight slot may be held by two stages that share it).</summary>
    public int Users { get; internal set; }

    /// <summary>Byte offset of the caller's data in the buffer, as the read reported it (a page window's first element).</summary>
    public long DataOffset { get; internal set; }

    /// <summary>The read (Task&lt;long&gt;: the data offset) or write in flight; null when none.</summary>
    internal Task? Pending { get; set; }

    /// <summary>Order writes were started in, to complete the oldest first.</summary>
    internal long WriteSequence { get; set; }

    /// <summary>Last use, for least-recently-used eviction.</summary>
    internal long Stamp { get; set; }

    internal void MoveTo(RingSlotState next, int key)
    {
        if (!IsAllowed(State, next))
            throw new InvalidOperationException($"Ring buffer {Index} holding {Key} cannot go from {State} to {next}.");
        State = next;
        Key = next == RingSlotState.Free ? -1 : key;
        if (next != RingSlotState.InUse)
            Users = 0;
    }

    public static bool IsAllowed(RingSlotState from, RingSlotState to) => (from, to) switch
    {
        (RingSlotState.Free, RingSlotState.Reading or RingSlotState.InUse) => true,
        (RingSlotState.Reading, RingSlotState.Ready or RingSlotState.Free) => true,
        (RingSlotState.Ready, RingSlotState.InUse or RingSlotState.Cached or RingSlotState.Free) => true,
        (RingSlotState.InUse, RingSlotState.InUse or RingSlotState.Writing or RingSlotState.Cached or RingSlotState.Free) => true,
        (RingSlotState.Writing, RingSlotState.Cached or RingSlotState.Free) => true,
        (RingSlotState.Cached, RingSlotState.InUse or RingSlotState.Free) => true,
        _ => false,
    };
}
