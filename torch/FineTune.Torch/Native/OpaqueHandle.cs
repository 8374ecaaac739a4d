using System.Runtime.InteropServices;

namespace FineTune.Torch.Native;

/// <summary>Owns one native object other than a tensor (generator, optimizer, CUDA stream or event).</summary>
internal sealed class OpaqueHandle : SafeHandle
{
    private readonly Action<IntPtr> _free;

    public OpaqueHandle(IntPtr handle, Action<IntPtr> free) : base(IntPtr.Zero, ownsHandle: true)
    {
        _free = free;
        SetHandle(handle);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        _free(handle);
        return true;
    }
}
