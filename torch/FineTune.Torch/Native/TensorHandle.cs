using System.Runtime.InteropServices;

namespace FineTune.Torch.Native;

/// <summary>Owns one native at::Tensor* (a reference to libtorch's tensor); releasing it frees the reference.</summary>
internal sealed class TensorHandle : SafeHandle
{
    public TensorHandle() : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public TensorHandle(IntPtr handle) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(handle);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.ft_tensor_free(handle);
        return true;
    }
}
