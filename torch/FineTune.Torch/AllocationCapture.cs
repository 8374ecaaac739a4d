using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>One captured allocation: page-aligned, <see cref="ByteCount"/> a multiple of 4096.</summary>
public readonly record struct CapturedRegion(IntPtr Pointer, long ByteCount)
{
    /// <summary>Whether <paramref name="address"/> lies in this region.</summary>
    public bool Holds(IntPtr address) => (ulong)address >= (ulong)Pointer && (ulong)address < (ulong)Pointer + (ulong)ByteCount;
}

/// <summary>
/// Allocation capture, the mechanism behind spilling a kept graph's saved tensors to NVMe (the shim's capture.cpp).
/// Between <see cref="Begin"/> and <see cref="End"/> on one thread, each CPU tensor allocation of at least
/// <see cref="MinimumByteCount"/> that thread makes gets a mapping of its own, page-aligned and rounded to 4096, so it
/// can be written to an O_DIRECT file where it lies and its pages handed back (<see cref="Discard"/>) while autograd
/// still holds the tensor; reading the bytes back into the same addresses restores it exactly. End returns the regions
/// still alive: what the graph saved, plus whatever else outlived the capture (the caller leaves out what it still
/// uses, such as the layer's output). Code that builds a cache during a capture (tensors that outlive the graph)
/// must run under <see cref="Suspend"/>, or the cache would be spilled with the graph.
/// libtorch 1.13 has no C++ saved-tensor hooks; this is what lets a plain autograd graph keep its activations on NVMe.
/// reference: SSDTrain (saved tensors offloaded to SSD through hooks), PyTorch saved_tensors_hooks.
/// </summary>
public static unsafe class AllocationCapture
{
    /// <summary>Smaller allocations are never captured (they go to libtorch's allocator and stay in memory).</summary>
    public static long MinimumByteCount => NativeMethods.ft_capture_min_bytes();

    /// <summary>Starts capturing this thread's allocations; fails when it already captures.</summary>
    public static void Begin() => NativeMethods.Check(NativeMethods.ft_capture_begin());

    /// <summary>Ends this thread's capture: the regions allocated since <see cref="Begin"/> that are still alive.</summary>
    public static CapturedRegion[] End()
    {
        long count;
        NativeMethods.Check(NativeMethods.ft_capture_end(&count));
        var pointers = new IntPtr[count];
        var bytes = new long[count];
        fixed (IntPtr* p = pointers)
        fixed (long* b = bytes)
            NativeMethods.Check(NativeMethods.ft_capture_result(p, b, count));
        var regions = new CapturedRegion[count];
        for (int i = 0; i < count; i++)
            regions[i] = new CapturedRegion(pointers[i], bytes[i]);
        return regions;
    }

    /// <summary>Runs <paramref name="body"/> between Begin and End, ending the capture however it leaves.</summary>
    public static (T Result, CapturedRegion[] Regions) Run<T>(Func<T> body)
    {
        Begin();
        T result;
        try
        {
            result = body();
        }
        catch
        {
            End();
            throw;
        }
        return (result, End());
    }

    /// <summary>Suspends this thread's capture until the scope is disposed (a no-op when it does not capture).</summary>
    public static SuspendScope Suspend()
    {
        int was;
        NativeMethods.Check(NativeMethods.ft_capture_set_active(0, &was));
        return new SuspendScope(was != 0);
    }

    /// <summary>
    /// Takes the region's pages away, into the page pool while it has room (<see cref="AddPoolLimit"/>), else back to
    /// the kernel: it reads as zeros until its bytes are written back into it.
    /// </summary>
    public static void Discard(CapturedRegion region) => NativeMethods.Check(NativeMethods.ft_capture_discard(region.Pointer, region.ByteCount));

    /// <summary>
    /// Before a discarded region is read back: moves pooled pages of its size under it (true), so the read lands in
    /// resident pages instead of faulting fresh zeroed ones in; false when the pool has none.
    /// </summary>
    public static bool SupplyPages(CapturedRegion region)
    {
        int supplied;
        NativeMethods.Check(NativeMethods.ft_capture_supply_pages(region.Pointer, region.ByteCount, &supplied));
        return supplied != 0;
    }

    /// <summary>
    /// The page pool: pages of discarded and freed regions kept resident for the next capture allocation or read-back
    /// of the same size (moved by page table, never copied), so neither faults in and zeroes fresh pages. Adds
    /// <paramref name="delta"/> bytes (negative: gives them back, trimming the pool) to its limit, 0 at start; returns
    /// the limit and the bytes pooled now. Each user adds its share and takes it back when done.
    /// </summary>
    public static (long Limit, long PooledByteCount) AddPoolLimit(long delta)
    {
        long limit, pooled;
        NativeMethods.Check(NativeMethods.ft_capture_pool_limit(delta, &limit, &pooled));
        return (limit, pooled);
    }

    /// <summary>Resumes the capture it suspended on Dispose.</summary>
    public readonly struct SuspendScope(bool resume) : IDisposable
    {
        public void Dispose()
        {
            if (!resume)
                return;
            int was;
            NativeMethods.Check(NativeMethods.ft_capture_set_active(1, &was));
        }
    }
}
