using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>A CUDA event: marks a point in a stream, lets another stream wait for it, and times work between two events.</summary>
public sealed class CudaEvent : IDisposable
{
    private readonly OpaqueHandle _handle;

    public unsafe CudaEvent(bool enableTiming = true)
    {
        IntPtr r;
        NativeMethods.Check(NativeMethods.ft_cuda_event_new(enableTiming ? 1 : 0, &r));
        _handle = new OpaqueHandle(r, NativeMethods.ft_cuda_event_free);
    }

    internal IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    /// <summary>Records the event at the current end of <paramref name="stream"/>'s queue.</summary>
    public void Record(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        NativeMethods.Check(NativeMethods.ft_cuda_event_record(Handle, stream.Handle));
    }

    /// <summary>Makes <paramref name="stream"/> wait (on the device, not the host) until this event has completed.</summary>
    public void Wait(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        NativeMethods.Check(NativeMethods.ft_cuda_event_wait(Handle, stream.Handle));
    }

    /// <summary>Blocks the host until the event has completed.</summary>
    public void Synchronize() => NativeMethods.Check(NativeMethods.ft_cuda_event_synchronize(Handle));

    public unsafe bool IsCompleted
    {
        get
        {
            int done;
            NativeMethods.Check(NativeMethods.ft_cuda_event_query(Handle, &done));
            return done != 0;
        }
    }

    /// <summary>Milliseconds from this event to <paramref name="end"/> (both recorded and completed, timing enabled).</summary>
    public unsafe float ElapsedMilliseconds(CudaEvent end)
    {
        ArgumentNullException.ThrowIfNull(end);
        float ms;
        NativeMethods.Check(NativeMethods.ft_cuda_event_elapsed_ms(Handle, end.Handle, &ms));
        return ms;
    }

    public void Dispose() => _handle.Dispose();
}
