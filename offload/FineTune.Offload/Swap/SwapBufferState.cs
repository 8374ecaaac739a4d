namespace FineTune.Offload.Swap;

/// <summary>
/// Lifecycle of one pipeline buffer. Allowed transitions (checked by <see cref="SwapSlot"/>):
///   Free -> ReadInFlight -> Ready -> Filling -> WriteInFlight -> OnDisk -> Free | ReadInFlight
///   Free -> Filling (first fill from the model's weights, or from a checkpoint)
///   Filling -> Ready (host tier: the updated states stay resident)
///   Ready -> WriteInFlight (checkpoint load writes a verified extent straight back)
///   Ready -> Free (checkpoint save is done reading it)
/// </summary>
public enum SwapBufferState
{
    /// <summary>Holds nothing anyone needs.</summary>
    Free,

    /// <summary>The CPU (or device) is writing into it: the AdamW update, or an initial fill.</summary>
    Filling,

    /// <summary>Being written to swap; the memory must not change until the write completes.</summary>
    WriteInFlight,

    /// <summary>Its contents are safely in swap; it may be reused.</summary>
    OnDisk,

    /// <summary>Being read from swap; not yet valid.</summary>
    ReadInFlight,

    /// <summary>Holds a sub-group's states, valid, ready for the update.</summary>
    Ready,
}
