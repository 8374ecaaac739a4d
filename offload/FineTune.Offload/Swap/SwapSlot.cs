using FineTune.Offload.Memory;

namespace FineTune.Offload.Swap;

/// <summary>
/// One pipeline buffer: a pool lease, the sub-group it currently holds, its <see cref="SwapBufferState"/> and the
/// I/O pending on it. Every state change goes through <see cref="MoveTo"/>, which rejects transitions the
/// pipeline must never make (e.g. reusing a buffer whose write is still in flight).
/// </summary>
public sealed class SwapSlot
{
    public SwapSlot(HostLease lease)
    {
        Lease = lease;
    }

    public HostLease Lease { get; }

    public SwapBufferState State { get; private set; } = SwapBufferState.Free;

    /// <summary>The sub-group whose states the buffer holds or is moving; -1 when none.</summary>
    public int SubGroup { get; private set; } = -1;

    /// <summary>The read in flight on this buffer (ReadInFlight until awaited).</summary>
    internal Task? PendingRead { get; set; }

    /// <summary>The write in flight on this buffer (WriteInFlight only).</summary>
    internal Task? PendingWrite { get; set; }

    /// <summary>Order in which writes were started, to wait on the oldest first.</summary>
    internal long WriteSequence { get; set; }

    public void MoveTo(SwapBufferState next, int subGroup)
    {
        if (!IsAllowed(State, next))
            throw new InvalidOperationException($"Swap buffer of sub-group {SubGroup} cannot go from {State} to {next}.");
        if (next != SwapBufferState.Free && State != SwapBufferState.Free && State != SwapBufferState.OnDisk && subGroup != SubGroup)
            throw new InvalidOperationException($"Swap buffer holding sub-group {SubGroup} was handed sub-group {subGroup} while {State}.");
        State = next;
        SubGroup = next == SwapBufferState.Free ? -1 : subGroup;
    }

    public static bool IsAllowed(SwapBufferState from, SwapBufferState to) => (from, to) switch
    {
        (SwapBufferState.Free, SwapBufferState.ReadInFlight) => true,
        (SwapBufferState.Free, SwapBufferState.Filling) => true,
        (SwapBufferState.ReadInFlight, SwapBufferState.Ready) => true,
        (SwapBufferState.Ready, SwapBufferState.Filling) => true,
        (SwapBufferState.Ready, SwapBufferState.WriteInFlight) => true,
        (SwapBufferState.Ready, SwapBufferState.Free) => true,
        (SwapBufferState.Filling, SwapBufferState.WriteInFlight) => true,
        (SwapBufferState.Filling, SwapBufferState.Ready) => true,
        (SwapBufferState.WriteInFlight, SwapBufferState.OnDisk) => true,
        (SwapBufferState.OnDisk, SwapBufferState.Free) => true,
        (SwapBufferState.OnDisk, SwapBufferState.ReadInFlight) => true,
        _ => false,
    };
}
