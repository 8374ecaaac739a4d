using System.Runtime.InteropServices;
using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>
/// Entry point of the binding: tensor factories (this file), functional ops (Torch.Ops.cs), autograd and
/// runtime settings (Torch.Autograd.cs). Defaults: float32 on the CPU.
/// </summary>
public static partial class Torch
{
    /// <summary>The libtorch version the native shim was built against, e.g. "1.13.0".</summary>
    public static string LibTorchVersion => Marshal.PtrToStringUTF8(NativeMethods.ft_torch_version()) ?? "unknown";

    /// <summary>Version of the shim's C ABI.</summary>
    public static int NativeAbiVersion => NativeMethods.ft_abi_version();

    /// <summary>True when the shim was compiled against a CUDA libtorch (FT_WITH_CUDA).</summary>
    public static bool BuiltWithCuda => NativeMethods.ft_built_with_cuda() != 0;

    /// <summary>Uninitialized tensor.</summary>
    public static unsafe Tensor Empty(long[] shape, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var d = device ?? Device.Cpu;
        IntPtr r;
        fixed (long* p = shape)
        {
            return Tensor.Result(NativeMethods.ft_empty(p, shape.Length, (int)dtype, (int)d.Type, d.Index, &r), r);
        }
    }

    public static Tensor Zeros(long[] shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 0.0, dtype, device);

    public static Tensor Ones(long[] shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 1.0, dtype, device);

    public static unsafe Tensor Full(long[] shape, double value, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var d = device ?? Device.Cpu;
        IntPtr r;
        fixed (long* p = shape)
        {
            return Tensor.Result(NativeMethods.ft_full(p, shape.Length, value, (int)dtype, (int)d.Type, d.Index, &r), r);
        }
    }

    /// <summary>
    /// [start, end) in steps of <paramref name="step"/> (torch.arange). Without a dtype, as in PyTorch: int64 when
    /// start, end and step are all whole numbers, float32 otherwise.
    /// </summary>
    public static unsafe Tensor Arange(double start, double end, double step = 1.0, DType? dtype = null, Device? device = null)
    {
        var d = device ?? Device.Cpu;
        var type = dtype ?? (double.IsInteger(start) && double.IsInteger(end) && double.IsInteger(step) ? DType.Int64 : DType.Float32);
        IntPtr r;
        return Tensor.Result(NativeMethods.ft_arange(start, end, step, (int)type, (int)d.Type, d.Index, &r), r);
    }

    public static Tensor Arange(long end, DType dtype = DType.Int64, Device? device = null) => Arange(0, end, 1, (DType?)dtype, device);

    /// <summary>Standard normal samples. With a <see cref="Generator"/> the values depend only on its seed (drawn on the CPU, then moved).</summary>
    public static unsafe Tensor Randn(long[] shape, Generator? generator = null, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var d = device ?? Device.Cpu;
        IntPtr r;
        fixed (long* p = shape)
        {
            var status = NativeMethods.ft_randn(p, shape.Length, generator?.Handle ?? IntPtr.Zero, (int)dtype, (int)d.Type, d.Index, &r);
            return Tensor.Result(status, r, generator);
        }
    }

    /// <summary>Uniform samples in [0, 1).</summary>
    public static unsafe Tensor Rand(long[] shape, Generator? generator = null, DType dtype = DType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var d = device ?? Device.Cpu;
        IntPtr r;
        fixed (long* p = shape)
        {
            var status = NativeMethods.ft_rand(p, shape.Length, generator?.Handle ?? IntPtr.Zero, (int)dtype, (int)d.Type, d.Index, &r);
            return Tensor.Result(status, r, generator);
        }
    }

    /// <summary>
    /// Zero-copy CPU tensor over caller-owned memory (contiguous, row-major). The memory must stay valid and
    /// unmoved for as long as this tensor or any view of it lives; libtorch never frees it.
    /// </summary>
    public static unsafe Tensor FromPointer(IntPtr data, long[] shape, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IntPtr r;
        fixed (long* p = shape)
        {
            return Tensor.Result(NativeMethods.ft_from_blob(data, p, shape.Length, (int)dtype, &r), r);
        }
    }

    /// <summary>New CPU tensor holding a copy of <paramref name="values"/> (row-major) with the given shape.</summary>
    public static unsafe Tensor FromArray<T>(ReadOnlySpan<T> values, long[] shape) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(shape);
        var dtype = DTypes.Of<T>();
        IntPtr r;
        fixed (T* data = values)
        fixed (long* p = shape)
        {
            var status = NativeMethods.ft_from_host((IntPtr)data, (long)values.Length * sizeof(T), p, shape.Length, (int)dtype, &r);
            return Tensor.Result(status, r);
        }
    }

    public static Tensor FromArray<T>(T[] values, long[] shape) where T : unmanaged => FromArray((ReadOnlySpan<T>)values, shape);

    /// <summary>1-d tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromArray<T>(T[] values) where T : unmanaged => FromArray((ReadOnlySpan<T>)values, [values.Length]);

    /// <summary>0-d tensor holding <paramref name="value"/>.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32, Device? device = null) => Full([], value, dtype, device);
}
