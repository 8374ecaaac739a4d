using FineTune.Torch.Native;

namespace FineTune.Torch;

// In-place arithmetic (the building blocks of device-side optimizer updates), Clamp, Norm and the finite check.
// In-place ops on a leaf that requires grad must run under Torch.NoGrad(), as in PyTorch.
public sealed partial class Tensor
{
    private Tensor UnaryInPlace(int op)
    {
        NativeMethods.Check(NativeMethods.ft_unary_(op, Handle));
        return this;
    }

    private Tensor BinaryInPlace(int op, Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        NativeMethods.Check(NativeMethods.ft_binary_(op, Handle, other.Handle));
        GC.KeepAlive(other);
        return this;
    }

    /// <summary>In place: this -= other (sub_).</summary>
    public Tensor SubInPlace(Tensor other) => BinaryInPlace(BinarySub, other);

    /// <summary>In place: this *= other, broadcast (mul_).</summary>
    public Tensor MulInPlace(Tensor other) => BinaryInPlace(BinaryMul, other);

    /// <summary>In place: this /= other, broadcast (div_).</summary>
    public Tensor DivInPlace(Tensor other) => BinaryInPlace(BinaryDiv, other);

    public Tensor SqrtInPlace() => UnaryInPlace(UnarySqrt);

    public Tensor NegInPlace() => UnaryInPlace(UnaryNeg);

    /// <summary>In place: this += value * a * b (addcmul_; Adam's second moment).</summary>
    public Tensor AddcmulInPlace(Tensor a, Tensor b, double value = 1.0)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        NativeMethods.Check(NativeMethods.ft_addcmul_(Handle, a.Handle, b.Handle, value));
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        return this;
    }

    /// <summary>In place: this += value * a / b (addcdiv_; Adam's parameter update).</summary>
    public Tensor AddcdivInPlace(Tensor a, Tensor b, double value = 1.0)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        NativeMethods.Check(NativeMethods.ft_addcdiv_(Handle, a.Handle, b.Handle, value));
        GC.KeepAlive(a);
        GC.KeepAlive(b);
        return this;
    }

    /// <summary>In place: this += weight * (end - this) (lerp_; Adam's first moment with weight 1 - beta1).</summary>
    public Tensor LerpInPlace(Tensor end, double weight)
    {
        ArgumentNullException.ThrowIfNull(end);
        NativeMethods.Check(NativeMethods.ft_lerp_(Handle, end.Handle, weight));
        GC.KeepAlive(end);
        return this;
    }

    /// <summary>Elements limited to [min, max]; either bound may be null (differentiable, gradient 0 where clamped).</summary>
    public unsafe Tensor Clamp(double? min, double? max)
    {
        IntPtr r;
        var status = NativeMethods.ft_clamp(Handle, min.HasValue ? 1 : 0, min ?? 0, max.HasValue ? 1 : 0, max ?? 0, &r);
        return Result(status, r, this);
    }

    public Tensor ClampInPlace(double? min, double? max)
    {
        NativeMethods.Check(NativeMethods.ft_clamp_(Handle, min.HasValue ? 1 : 0, min ?? 0, max.HasValue ? 1 : 0, max ?? 0));
        return this;
    }

    /// <summary>The p-norm of all elements, (sum |x|^p)^(1/p), as a 0-d tensor (gradient clipping uses p = 2).</summary>
    public unsafe Tensor Norm(double p = 2.0)
    {
        IntPtr r;
        return Result(NativeMethods.ft_norm(Handle, p, &r), r, this);
    }

    /// <summary>True when no element is NaN or infinite (one pass plus a reduction in libtorch).</summary>
    public unsafe bool AllFinite()
    {
        int allFinite;
        NativeMethods.Check(NativeMethods.ft_all_finite(Handle, &allFinite));
        GC.KeepAlive(this);
        return allFinite != 0;
    }
}
