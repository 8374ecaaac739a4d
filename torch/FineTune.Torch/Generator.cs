using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>A seeded CPU random generator (libtorch's mt19937-based CPUGeneratorImpl) for Randn/Rand.</summary>
public sealed class Generator : IDisposable
{
    private readonly OpaqueHandle _handle;

    public unsafe Generator(long seed)
    {
        Seed = seed;
        IntPtr r;
        NativeMethods.Check(NativeMethods.ft_generator_new(unchecked((ulong)seed), &r));
        _handle = new OpaqueHandle(r, NativeMethods.ft_generator_free);
    }

    public long Seed { get; }

    internal IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    public void Dispose() => _handle.Dispose();
}
