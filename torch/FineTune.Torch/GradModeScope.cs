using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>Sets libtorch's thread-local grad mode and restores the previous mode on Dispose (same thread).</summary>
internal sealed unsafe class GradModeScope : IDisposable
{
    private readonly bool _previous;
    private bool _disposed;

    public GradModeScope(bool enabled)
    {
        int previous;
        NativeMethods.Check(NativeMethods.ft_grad_enabled(&previous));
        _previous = previous != 0;
        NativeMethods.Check(NativeMethods.ft_set_grad_enabled(enabled ? 1 : 0));
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            NativeMethods.Check(NativeMethods.ft_set_grad_enabled(_previous ? 1 : 0));
        }
    }
}
