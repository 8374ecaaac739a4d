using FineTune.Offload.Memory;

namespace FineTune.Offload.Swap;

/// <summary>
/// Where sub-group states rest between steps: a fixed set of extents, each read into and written from a pool
/// buffer. Extent byte counts are fixed at creation and multiples of 4 KiB (O_DIRECT). Reads and writes may be in
/// flight together (separate queues); at most one request per extent is in flight (the pipeline guarantees it).
/// Implementations: <see cref="NvmeSwapStore"/> (O_DIRECT files through the io engine) and
/// <see cref="MemorySwapStore"/> (host memory, the reference for tests and for machines without a scratch disk).
/// </summary>
public interface ISwapStore : IDisposable
{
    /// <summary>"nvme (io_uring, /path)" or "memory": for logs and bench output.</summary>
    string Description { get; }

    int ExtentCount { get; }

    /// <summary>Bytes of extent <paramref name="extent"/> (a multiple of 4096).</summary>
    long ExtentByteCount(int extent);

    /// <summary>Reads the whole extent into the start of <paramref name="buffer"/>.</summary>
    ValueTask ReadAsync(int extent, HostLease buffer);

    /// <summary>Writes the start of <paramref name="buffer"/> to the whole extent.</summary>
    ValueTask WriteAsync(int extent, HostLease buffer);
}
