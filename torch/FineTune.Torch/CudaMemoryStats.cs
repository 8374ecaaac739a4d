namespace FineTune.Torch;

/// <summary>
/// Device memory figures in bytes: allocated = held by live tensors, reserved = held by libtorch's caching
/// allocator (allocated plus cached), free/total = the driver's view of the whole device (cudaMemGetInfo).
/// </summary>
public readonly record struct CudaMemoryStats(
    long AllocatedByteCount,
    long PeakAllocatedByteCount,
    long ReservedByteCount,
    long PeakReservedByteCount,
    long FreeByteCount,
    long TotalByteCount);
