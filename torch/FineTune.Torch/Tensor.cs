using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>
/// A libtorch tensor, owned through a <see cref="SafeHandle"/>-derived handle. Every operation returns a new
/// Tensor that owns a new native reference (views share storage, as in PyTorch). A Tensor created while a
/// <see cref="TensorScope"/> is current on this thread belongs to that scope and is disposed with it; otherwise
/// the caller disposes it. This file holds lifetime and metadata; ops live in Tensor.*.cs.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private readonly TensorHandle _handle;

    // The scope that will dispose this tensor, or null when the caller owns it.
    internal TensorScope? Scope { get; set; }

    internal Tensor(IntPtr handle)
    {
        if (handle == IntPtr.Zero)
        {
            throw new ArgumentException("a null native tensor handle cannot make a Tensor", nameof(handle));
        }
        _handle = new TensorHandle(handle);
        TensorScope.Current?.Register(this);
    }

    /// <summary>Native tensors currently alive in this process (handles not yet released), for leak assertions.</summary>
    public static long LiveCount => NativeMethods.ft_live_tensor_count();

    /// <summary>The raw at::Tensor* for native calls. Callers keep this Tensor reachable until the call returns.</summary>
    internal IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    public bool IsDisposed => _handle.IsClosed;

    public unsafe int Rank
    {
        get
        {
            int rank;
            NativeMethods.Check(NativeMethods.ft_tensor_rank(Handle, &rank));
            return rank;
        }
    }

    public unsafe long[] Shape
    {
        get
        {
            var shape = new long[Rank];
            fixed (long* p = shape)
            {
                NativeMethods.Check(NativeMethods.ft_tensor_shape(Handle, p, shape.Length));
            }
            return shape;
        }
    }

    /// <summary>Strides in elements (not bytes), one per dimension.</summary>
    public unsafe long[] Strides
    {
        get
        {
            var strides = new long[Rank];
            fixed (long* p = strides)
            {
                NativeMethods.Check(NativeMethods.ft_tensor_strides(Handle, p, strides.Length));
            }
            return strides;
        }
    }

    public unsafe long NumElements
    {
        get
        {
            long count;
            NativeMethods.Check(NativeMethods.ft_tensor_numel(Handle, &count));
            return count;
        }
    }

    public unsafe long ElementByteCount
    {
        get
        {
            long byteCount;
            NativeMethods.Check(NativeMethods.ft_tensor_element_size(Handle, &byteCount));
            return byteCount;
        }
    }

    public unsafe DType DType
    {
        get
        {
            int code;
            NativeMethods.Check(NativeMethods.ft_tensor_dtype(Handle, &code));
            if (code < 0)
            {
                throw new TorchException("this tensor's dtype is not one FineTune supports");
            }
            return (DType)code;
        }
    }

    public unsafe Device Device
    {
        get
        {
            int type, index;
            NativeMethods.Check(NativeMethods.ft_tensor_device(Handle, &type, &index));
            if (type > 1)
            {
                throw new TorchException("this tensor lives on a device FineTune does not support");
            }
            return new Device((DeviceType)type, index);
        }
    }

    /// <summary>Address of the first element (host or device memory). Valid while this tensor's storage lives.</summary>
    public unsafe IntPtr DataPointer
    {
        get
        {
            IntPtr data;
            NativeMethods.Check(NativeMethods.ft_tensor_data_ptr(Handle, &data));
            return data;
        }
    }

    public unsafe bool IsContiguous
    {
        get
        {
            int contiguous;
            NativeMethods.Check(NativeMethods.ft_tensor_is_contiguous(Handle, &contiguous));
            return contiguous != 0;
        }
    }

    /// <summary>Releases the native reference now. Safe to call twice; a scope that owns it skips it later.</summary>
    public void Dispose()
    {
        _handle.Dispose();
    }

    /// <summary>Hands this tensor from its scope to the enclosing scope (or to the caller when there is none).</summary>
    public Tensor MoveToOuterScope()
    {
        var scope = Scope;
        if (scope != null)
        {
            Scope = null;
            scope.Parent?.Register(this);
        }
        return this;
    }

    public override string ToString() =>
        IsDisposed ? "Tensor(disposed)" : $"Tensor({string.Join(", ", Shape)}; {DType.Name()}; {Device})";

    /// <summary>Wraps a native result. The extra arguments keep operands reachable until the native call returned.</summary>
    internal static Tensor Result(int status, IntPtr result, object? keepAlive1 = null, object? keepAlive2 = null)
    {
        NativeMethods.Check(status);
        GC.KeepAlive(keepAlive1);
        GC.KeepAlive(keepAlive2);
        return new Tensor(result);
    }

    /// <summary>Like <see cref="Result"/>, for results that may be undefined (null handle).</summary>
    internal static Tensor? OptionalResult(int status, IntPtr result, object? keepAlive = null)
    {
        NativeMethods.Check(status);
        GC.KeepAlive(keepAlive);
        return result == IntPtr.Zero ? null : new Tensor(result);
    }
}
