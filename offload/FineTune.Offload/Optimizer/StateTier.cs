namespace FineTune.Offload.Optimizer;

/// <summary>Where the fp32 master, m and v of the sub-groups live between steps.</summary>
public enum StateTier
{
    /// <summary>Resident in the host pool: one buffer per sub-group, no I/O.</summary>
    Host,

    /// <summary>In preallocated NVMe swap space, streamed through a few pool buffers each step.</summary>
    Nvme,

    /// <summary>In a host-memory swap store: the NVMe code path with memcpy instead of disk (tests, reference).</summary>
    MemorySwap,
}
