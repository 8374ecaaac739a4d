namespace FineTune.Offload.Memory;

/// <summary>Page alignment of host buffers: O_DIRECT needs buffer addresses and lengths aligned to the logical block.</summary>
public static class HostAlignment
{
    /// <summary>4 KiB covers every NVMe logical block size we meet (512 B and 4 KiB).</summary>
    public const int PageByteCount = 4096;

    public static long RoundUpToPage(long byteCount) => (byteCount + PageByteCount - 1) / PageByteCount * PageByteCount;
}
