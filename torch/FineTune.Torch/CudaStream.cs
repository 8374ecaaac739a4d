using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>
/// A CUDA stream from libtorch's pool. `using (stream.MakeCurrent()) { ... }` runs the enclosed libtorch work on
/// it (this thread, its device) and restores the previous current stream afterwards.
/// </summary>
public sealed class CudaStream : IDisposable
{
    private readonly OpaqueHandle _handle;

    private CudaStream(IntPtr handle, int deviceIndex)
    {
        _handle = new OpaqueHandle(handle, NativeMethods.ft_cuda_stream_free);
        DeviceIndex = deviceIndex;
    }

    public int DeviceIndex { get; }

    /// <summary>A stream from libtorch's pool for the device (high priority streams preempt normal ones).</summary>
    public static unsafe CudaStream Create(int deviceIndex = 0, bool highPriority = false)
    {
        IntPtr r;
        NativeMethods.Check(NativeMethods.ft_cuda_stream_new(deviceIndex, highPriority ? 1 : 0, &r));
        return new CudaStream(r, deviceIndex);
    }

    /// <summary>The stream libtorch currently uses on this thread for the device.</summary>
    public static unsafe CudaStream Current(int deviceIndex = 0)
    {
        IntPtr r;
        NativeMethods.Check(NativeMethods.ft_cuda_stream_current(deviceIndex, &r));
        return new CudaStream(r, deviceIndex);
    }

    internal IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    /// <summary>Makes this the current stream of its device on this thread until the returned scope is disposed.</summary>
    public IDisposable MakeCurrent()
    {
        var previous = Current(DeviceIndex);
        NativeMethods.Check(NativeMethods.ft_cuda_stream_set_current(Handle));
        return new Restore(previous);
    }

    /// <summary>Blocks until all work queued on this stream has finished.</summary>
    public void Synchronize() => NativeMethods.Check(NativeMethods.ft_cuda_stream_synchronize(Handle));

    /// <summary>True when all work queued on this stream has finished.</summary>
    public unsafe bool IsIdle
    {
        get
        {
            int done;
            NativeMethods.Check(NativeMethods.ft_cuda_stream_query(Handle, &done));
            return done != 0;
        }
    }

    public void Dispose() => _handle.Dispose();

    private sealed class Restore(CudaStream previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            NativeMethods.Check(NativeMethods.ft_cuda_stream_set_current(previous.Handle));
            previous.Dispose();
        }
    }
}
