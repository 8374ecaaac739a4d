namespace FineTune.Offload.Rings;

/// <summary>
/// Where one pooled buffer of a <see cref="BufferRing"/> is in its life. Allowed moves (<see cref="RingSlot.IsAllowed"/>):
///   Free -> Reading (a read into it started) | InUse (a caller fills it)
///   Reading -> Ready (read done) | Free (read failed)
///   Ready -> InUse (its reader uses it) | Cached (nobody came; contents still valid) | Free (dropped)
///   InUse -> Writing (its contents go to the drive) | Cached (released, contents valid) | Free (dropped)
///   Writing -> Cached (write done: buffer and drive agree) | Free (write failed)
///   Cached -> InUse (a hit) | Free (evicted for other contents, or invalidated)
/// </summary>
public enum RingSlotState
{
    /// <summary>Holds nothing anyone needs.</summary>
    Free,

    /// <summary>A read from the drive into the buffer is in flight.</summary>
    Reading,

    /// <summary>Read done; waiting for the caller that asked for it (a prefetch not yet used): not evictable by prefetches.</summary>
    Ready,

    /// <summary>Held by one or more callers (being updated, computed with, or filled).</summary>
    InUse,

    /// <summary>A write of the buffer to the drive is in flight; the buffer may not change.</summary>
    Writing,

    /// <summary>Contents valid for its key and nobody holds it: reusable as a hit, or evictable (least recently used first).</summary>
    Cached,
}
