using FineTune.IO;

namespace FineTune.Offload.Memory;

/// <summary>
/// One buffer rented from a <see cref="HostMemoryPool"/>: page-aligned native memory of at least
/// <see cref="ByteCount"/> bytes. Disposing returns it to the pool; a second Dispose is a bug and throws,
/// and using a returned lease throws, so a buffer can never be shared by two owners.
/// </summary>
public sealed unsafe class HostLease : IDisposable
{
    private readonly HostMemoryPool _pool;
    private bool _returned;

    private readonly AlignedBuffer _buffer;

    internal HostLease(HostMemoryPool pool, int slot, BufferKind kind, AlignedBuffer buffer, long byteCount)
    {
        _pool = pool;
        Slot = slot;
        Kind = kind;
        _buffer = buffer;
        ByteCount = byteCount;
    }

    internal int Slot { get; }

    /// <summary>The buffer class this lease was rented from.</summary>
    public BufferKind Kind { get; }

    /// <summary>The class's name, for messages.</summary>
    public string ClassName => Kind.Describe();

    /// <summary>Bytes the caller asked for (the class's exact byte count).</summary>
    public long ByteCount { get; }

    /// <summary>Bytes the allocator set aside for it (page-rounded, or a power of two for the baseline).</summary>
    public long BackingByteCount => _buffer.CapacityByteCount;

    /// <summary>The pool's buffer, for I/O engines; valid only while the lease is held.</summary>
    public AlignedBuffer Buffer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_returned, this);
            return _buffer;
        }
    }

    /// <summary>Start of the buffer, aligned to <see cref="HostAlignment.PageByteCount"/>.</summary>
    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_returned, this);
            return _buffer.Pointer;
        }
    }

    /// <summary>The first <paramref name="elementCount"/> elements of the buffer as a span of T.</summary>
    public Span<T> AsSpan<T>(long byteOffset, int elementCount) where T : unmanaged
    {
        if (byteOffset < 0 || byteOffset + (long)elementCount * sizeof(T) > BackingByteCount)
            throw new ArgumentOutOfRangeException(nameof(elementCount), $"{elementCount} x {sizeof(T)} bytes at {byteOffset} overrun a {BackingByteCount}-byte buffer.");
        return new Span<T>(Pointer + byteOffset, elementCount);
    }

    public void Dispose()
    {
        if (_returned)
            throw new InvalidOperationException($"A lease of buffer class '{ClassName}' was returned twice.");
        _returned = true;
        _pool.Return(this);
    }
}
