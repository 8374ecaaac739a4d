using FineTune.Torch.Native;

namespace FineTune.Torch;

// Autograd on one tensor: RequiresGrad, Grad, Backward, ZeroGrad. Multi-output and sub-graph autograd is Torch.Grad/Backward.
public sealed partial class Tensor
{
    public unsafe bool RequiresGrad
    {
        get
        {
            int value;
            NativeMethods.Check(NativeMethods.ft_requires_grad(Handle, &value));
            return value != 0;
        }
        set => NativeMethods.Check(NativeMethods.ft_set_requires_grad(Handle, value ? 1 : 0));
    }

    /// <summary>
    /// The accumulated gradient (a new Tensor sharing the gradient's storage, owned like any new tensor), or null
    /// when none has been computed. Setting it replaces the gradient (null clears it).
    /// </summary>
    public unsafe Tensor? Grad
    {
        get
        {
            IntPtr r;
            return OptionalResult(NativeMethods.ft_grad(Handle, &r), r, this);
        }
        set
        {
            NativeMethods.Check(NativeMethods.ft_set_grad(Handle, value?.Handle ?? IntPtr.Zero));
            GC.KeepAlive(value);
        }
    }

    /// <summary>True for tensors created by the user (not by an op on tensors that require grad).</summary>
    public unsafe bool IsLeaf
    {
        get
        {
            int value;
            NativeMethods.Check(NativeMethods.ft_is_leaf(Handle, &value));
            return value != 0;
        }
    }

    /// <summary>
    /// Accumulates d(this)/d(leaf) into every leaf's <see cref="Grad"/>. <paramref name="grad"/> is dL/d(this)
    /// (same shape); it may be omitted only for a single-element tensor (then 1).
    /// </summary>
    public unsafe void Backward(Tensor? grad = null, bool retainGraph = false)
    {
        var output = Handle;
        var gradHandle = grad?.Handle ?? IntPtr.Zero;
        NativeMethods.Check(NativeMethods.ft_backward(&output, &gradHandle, 1, retainGraph ? 1 : 0));
        GC.KeepAlive(this);
        GC.KeepAlive(grad);
    }

    /// <summary>Zeroes the accumulated gradient in place (nothing happens when there is none).</summary>
    public void ZeroGrad()
    {
        NativeMethods.Check(NativeMethods.ft_zero_grad(Handle));
    }
}
