using System.Runtime.InteropServices;

namespace FineTune.IO;

/// <summary>
/// Native memory aligned to 4 KiB, the one owner type for O_DIRECT transfer buffers. <see cref="ByteCount"/> is
/// exactly what was asked for; the allocation is rounded up to the 4096-byte sector (<see cref="CapacityByteCount"/>)
/// so a final partial sector can still be transferred. Memory is zeroed on allocation.
///
/// Engines pin a buffer for the lifetime of each request (<see cref="AddInFlight"/>/<see cref="ReleaseInFlight"/>);
/// <see cref="Dispose"/> throws while any I/O is in flight, because the kernel may still be writing into it.
/// Not a pool: offload's pinned host pool hands these out; this type only owns and guards one allocation
/// (or, <see cref="Borrow"/>, guards memory another owner frees).
/// </summary>
public sealed unsafe class AlignedBuffer : IDisposable
{
    /// <summary>Alignment of <see cref="Pointer"/> and of the capacity, in bytes (the O_DIRECT sector).</summary>
    public const int Alignment = 4096;

    /// <summary>The x86-64 transparent huge page (2 MiB).</summary>
    public const int HugePageByteCount = 2 << 20;

    private byte* _pointer;
    private readonly bool _borrowed;

    // >= 0: number of I/Os in flight. -1: disposed. Transitions are CAS loops so Dispose cannot race a submission.
    private int _inFlightCount;

    public AlignedBuffer(long byteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteCount);
        ByteCount = byteCount;
        CapacityByteCount = RoundUpToSector(Math.Max(byteCount, 1));
        // A buffer of 2 MiB or more starts on a huge-page boundary and asks for transparent huge pages (madvise: the
        // kernel's default THP mode compacts for madvised memory only). A direct transfer then pins a few 2 MiB pages
        // instead of hundreds of 4 KiB ones: on the virtual disk here the swap pattern ran at 4.4 GB/s instead of 1.5,
        // with a fifth of the kernel's CPU per byte (docs/scaling.md). Advisory: where THP is off it changes nothing.
        bool huge = CapacityByteCount >= HugePageByteCount;
        _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)CapacityByteCount, (nuint)(huge ? HugePageByteCount : Alignment));
        if (huge)
            Native.LibC.Madvise(_pointer, (nuint)CapacityByteCount, Native.LibC.MADV_HUGEPAGE);
        NativeMemory.Clear(_pointer, (nuint)CapacityByteCount);
    }

    private AlignedBuffer(byte* pointer, long byteCount)
    {
        _pointer = pointer;
        ByteCount = CapacityByteCount = byteCount;
        _borrowed = true;
    }

    /// <summary>
    /// A buffer over memory someone else owns (a captured tensor's region, say): sector-aligned, a whole number of
    /// sectors, alive until the buffer's transfers are done; Dispose frees nothing.
    /// </summary>
    public static AlignedBuffer Borrow(IntPtr pointer, long byteCount)
    {
        if (pointer % Alignment != 0 || byteCount <= 0 || byteCount % Alignment != 0)
            throw new ArgumentException($"a borrowed transfer buffer must start on a {Alignment}-byte boundary and be a positive multiple of {Alignment} bytes (got 0x{pointer:x}, {byteCount} bytes).");
        return new AlignedBuffer((byte*)pointer, byteCount);
    }

    /// <summary>The byte count requested at construction.</summary>
    public long ByteCount { get; }

    /// <summary><see cref="ByteCount"/> rounded up to a multiple of <see cref="Alignment"/> (at least one sector).</summary>
    public long CapacityByteCount { get; }

    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_inFlightCount < 0, this);
            return _pointer;
        }
    }

    public IntPtr Address => (IntPtr)Pointer;

    /// <summary>The first <see cref="ByteCount"/> bytes (throws when that exceeds a span's int range).</summary>
    public Span<byte> Span => GetSpan(0, checked((int)ByteCount));

    /// <summary>I/Os currently in flight on this buffer.</summary>
    public int InFlightCount => Math.Max(0, Volatile.Read(ref _inFlightCount));

    public bool IsDisposed => Volatile.Read(ref _inFlightCount) < 0;

    /// <summary>A view of <paramref name="byteCount"/> bytes from <paramref name="offset"/>, within the capacity.</summary>
    public Span<byte> GetSpan(long offset, int byteCount)
    {
        if (offset < 0 || byteCount < 0 || offset + byteCount > CapacityByteCount)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range [{offset}, {offset + byteCount}) is outside the buffer's {CapacityByteCount} bytes.");
        return new Span<byte>(Pointer + offset, byteCount);
    }

    /// <summary>Rounds up to a multiple of <see cref="Alignment"/>.</summary>
    public static long RoundUpToSector(long byteCount) => checked((byteCount + Alignment - 1) & ~(long)(Alignment - 1));

    /// <summary>Called by an engine before it hands the memory to the kernel.</summary>
    internal void AddInFlight()
    {
        while (true)
        {
            int current = Volatile.Read(ref _inFlightCount);
            ObjectDisposedException.ThrowIf(current < 0, this);
            if (Interlocked.CompareExchange(ref _inFlightCount, current + 1, current) == current)
                return;
        }
    }

    /// <summary>Called by an engine once the kernel is done with the memory.</summary>
    internal void ReleaseInFlight()
    {
        int after = Interlocked.Decrement(ref _inFlightCount);
        if (after < 0)
            throw new InvalidOperationException("AlignedBuffer released more I/Os than were in flight (engine bug).");
    }

    public void Dispose()
    {
        while (true)
        {
            int current = Volatile.Read(ref _inFlightCount);
            if (current < 0)
                return;
            if (current > 0)
                throw new InvalidOperationException($"Cannot free an AlignedBuffer while {current} I/O request(s) on it are in flight; await them first.");
            if (Interlocked.CompareExchange(ref _inFlightCount, -1, 0) == 0)
                break;
        }
        if (!_borrowed)
            NativeMemory.AlignedFree(_pointer);
        _pointer = null;
    }
}
