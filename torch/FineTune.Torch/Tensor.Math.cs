using FineTune.Torch.Native;

namespace FineTune.Torch;

// Elementwise arithmetic, operators, unary functions, reductions, softmax and masking (all differentiable).
public sealed partial class Tensor
{
    private const int UnaryNeg = 0, UnaryRsqrt = 1, UnarySqrt = 2, UnaryExp = 3, UnaryLog = 4, UnarySilu = 5;
    private const int UnaryContiguous = 6, UnaryClone = 7, UnaryDetach = 8, UnaryAbs = 9, UnarySigmoid = 10;
    private const int UnaryTanh = 11, UnaryCos = 12, UnarySin = 13;
    private const int BinaryAdd = 0, BinarySub = 1, BinaryMul = 2, BinaryDiv = 3, BinaryPow = 4, BinaryRSub = 5, BinaryRDiv = 6;

    private unsafe Tensor Unary(int op)
    {
        IntPtr r;
        return Result(NativeMethods.ft_unary(op, Handle, &r), r, this);
    }

    private unsafe Tensor Binary(int op, Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        IntPtr r;
        return Result(NativeMethods.ft_binary(op, Handle, other.Handle, &r), r, this, other);
    }

    private unsafe Tensor BinaryScalar(int op, double value)
    {
        IntPtr r;
        return Result(NativeMethods.ft_binary_scalar(op, Handle, value, &r), r, this);
    }

    public Tensor Add(Tensor other) => Binary(BinaryAdd, other);
    public Tensor Sub(Tensor other) => Binary(BinarySub, other);
    public Tensor Mul(Tensor other) => Binary(BinaryMul, other);
    public Tensor Div(Tensor other) => Binary(BinaryDiv, other);
    public Tensor Add(double value) => BinaryScalar(BinaryAdd, value);
    public Tensor Sub(double value) => BinaryScalar(BinarySub, value);
    public Tensor Mul(double value) => BinaryScalar(BinaryMul, value);
    public Tensor Div(double value) => BinaryScalar(BinaryDiv, value);
    public Tensor Pow(double exponent) => BinaryScalar(BinaryPow, exponent);

    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator +(Tensor a, double b) => a.Add(b);
    public static Tensor operator -(Tensor a, double b) => a.Sub(b);
    public static Tensor operator *(Tensor a, double b) => a.Mul(b);
    public static Tensor operator /(Tensor a, double b) => a.Div(b);
    public static Tensor operator +(double a, Tensor b) => b.Add(a);
    public static Tensor operator -(double a, Tensor b) => b.BinaryScalar(BinaryRSub, a);
    public static Tensor operator *(double a, Tensor b) => b.Mul(a);
    public static Tensor operator /(double a, Tensor b) => b.BinaryScalar(BinaryRDiv, a);
    public static Tensor operator -(Tensor a) => a.Neg();

    public Tensor Neg() => Unary(UnaryNeg);
    public Tensor Rsqrt() => Unary(UnaryRsqrt);
    public Tensor Sqrt() => Unary(UnarySqrt);
    public Tensor Exp() => Unary(UnaryExp);
    public Tensor Log() => Unary(UnaryLog);
    public Tensor Abs() => Unary(UnaryAbs);
    public Tensor Sigmoid() => Unary(UnarySigmoid);
    public Tensor Tanh() => Unary(UnaryTanh);
    public Tensor Cos() => Unary(UnaryCos);
    public Tensor Sin() => Unary(UnarySin);

    /// <summary>x * sigmoid(x) (SiLU / swish), the Llama MLP activation.</summary>
    public Tensor Silu() => Unary(UnarySilu);

    /// <summary>A contiguous tensor with the same values (this tensor's storage when already contiguous).</summary>
    public Tensor Contiguous() => Unary(UnaryContiguous);

    /// <summary>A copy with its own storage, still connected to the autograd graph.</summary>
    public Tensor Clone() => Unary(UnaryClone);

    /// <summary>Same storage, cut from the autograd graph (requires_grad false).</summary>
    public Tensor Detach() => Unary(UnaryDetach);

    public unsafe Tensor Mean(long[] dims, bool keepDim = false)
    {
        ArgumentNullException.ThrowIfNull(dims);
        IntPtr r;
        fixed (long* p = dims)
        {
            return Result(NativeMethods.ft_mean(Handle, p, dims.Length, keepDim ? 1 : 0, &r), r, this);
        }
    }

    public unsafe Tensor Mean()
    {
        IntPtr r;
        return Result(NativeMethods.ft_mean(Handle, null, -1, 0, &r), r, this);
    }

    public unsafe Tensor Sum(long[] dims, bool keepDim = false)
    {
        ArgumentNullException.ThrowIfNull(dims);
        IntPtr r;
        fixed (long* p = dims)
        {
            return Result(NativeMethods.ft_sum(Handle, p, dims.Length, keepDim ? 1 : 0, &r), r, this);
        }
    }

    public unsafe Tensor Sum()
    {
        IntPtr r;
        return Result(NativeMethods.ft_sum(Handle, null, -1, 0, &r), r, this);
    }

    /// <summary>The largest element, as a 0-d tensor.</summary>
    public unsafe Tensor Max()
    {
        IntPtr r;
        return Result(NativeMethods.ft_max_all(Handle, &r), r, this);
    }

    public unsafe Tensor ArgMax(long dim, bool keepDim = false)
    {
        IntPtr r;
        return Result(NativeMethods.ft_argmax(Handle, dim, keepDim ? 1 : 0, &r), r, this);
    }

    public unsafe Tensor Softmax(long dim)
    {
        IntPtr r;
        return Result(NativeMethods.ft_softmax(Handle, dim, &r), r, this);
    }

    public unsafe Tensor LogSoftmax(long dim)
    {
        IntPtr r;
        return Result(NativeMethods.ft_log_softmax(Handle, dim, &r), r, this);
    }

    /// <summary>Copy with <paramref name="value"/> where the bool <paramref name="mask"/> (broadcast) is true.</summary>
    public unsafe Tensor MaskedFill(Tensor mask, double value)
    {
        ArgumentNullException.ThrowIfNull(mask);
        IntPtr r;
        return Result(NativeMethods.ft_masked_fill(Handle, mask.Handle, value, &r), r, this, mask);
    }

    /// <summary>Upper triangle of the last two dimensions: keeps j - i &gt;= k, zeroes the rest.</summary>
    public unsafe Tensor Triu(long k = 0)
    {
        IntPtr r;
        return Result(NativeMethods.ft_triu(Handle, k, &r), r, this);
    }

    /// <summary>Lower triangle of the last two dimensions: keeps j - i &lt;= k, zeroes the rest.</summary>
    public unsafe Tensor Tril(long k = 0)
    {
        IntPtr r;
        return Result(NativeMethods.ft_tril(Handle, k, &r), r, this);
    }

    /// <summary>True when both tensors have the same shape and exactly the same elements (torch.equal).</summary>
    public unsafe bool ValueEquals(Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        int equal;
        NativeMethods.Check(NativeMethods.ft_equal(Handle, other.Handle, &equal));
        GC.KeepAlive(this);
        GC.KeepAlive(other);
        return equal != 0;
    }
}
