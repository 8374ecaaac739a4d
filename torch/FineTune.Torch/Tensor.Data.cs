using FineTune.Torch.Native;

namespace FineTune.Torch;

// Conversion, transfer, in-place updates and copies between tensors and .NET memory.
public sealed partial class Tensor
{
    /// <summary>This tensor on another device (the same tensor, as a new reference, when already there).</summary>
    public Tensor To(Device device) => To(device, DType);

    public unsafe Tensor To(DType dtype)
    {
        IntPtr r;
        return Result(NativeMethods.ft_to(Handle, -1, 0, (int)dtype, 0, &r), r, this);
    }

    /// <summary>
    /// Converts and moves. nonBlocking lets a host-to-device copy from pinned memory (or device-to-host into
    /// pinned memory) run asynchronously on the current CUDA stream; synchronize before reading the result.
    /// </summary>
    public unsafe Tensor To(Device device, DType dtype, bool nonBlocking = false)
    {
        IntPtr r;
        return Result(NativeMethods.ft_to(Handle, (int)device.Type, device.Index, (int)dtype, nonBlocking ? 1 : 0, &r), r, this);
    }

    /// <summary>In place: this[...] = src (broadcast, converted), like copy_. Recorded by autograd.</summary>
    public Tensor CopyFrom(Tensor src, bool nonBlocking = false)
    {
        ArgumentNullException.ThrowIfNull(src);
        NativeMethods.Check(NativeMethods.ft_copy_(Handle, src.Handle, nonBlocking ? 1 : 0));
        GC.KeepAlive(src);
        return this;
    }

    /// <summary>In place: this += alpha * other (add_).</summary>
    public Tensor AddInPlace(Tensor other, double alpha = 1.0)
    {
        ArgumentNullException.ThrowIfNull(other);
        NativeMethods.Check(NativeMethods.ft_add_(Handle, other.Handle, alpha));
        GC.KeepAlive(other);
        return this;
    }

    /// <summary>In place: this *= value (mul_).</summary>
    public Tensor MulInPlace(double value)
    {
        NativeMethods.Check(NativeMethods.ft_mul_scalar_(Handle, value));
        return this;
    }

    /// <summary>In place: every element = value (fill_).</summary>
    public Tensor FillInPlace(double value)
    {
        NativeMethods.Check(NativeMethods.ft_fill_(Handle, value));
        return this;
    }

    /// <summary>The value of a one-element tensor, converted to <typeparamref name="T"/> when the dtypes differ.</summary>
    public T Item<T>() where T : unmanaged
    {
        var count = NumElements;
        if (count != 1)
        {
            throw new TorchException($"Item() needs a tensor with one element, this one has {count} (shape [{string.Join(", ", Shape)}])");
        }
        Span<T> value = stackalloc T[1];
        var wanted = DTypes.Of<T>();
        if (wanted == DType)
        {
            CopyTo(value);
        }
        else
        {
            using var converted = TensorScope.Current is { } scope ? scope.Detach(To(wanted)) : To(wanted);
            converted.CopyTo(value);
        }
        return value[0];
    }

    /// <summary>
    /// Copies every element, in logical (row-major) order, into <paramref name="destination"/>, whose length must equal
    /// <see cref="NumElements"/> and whose element type must match <see cref="DType"/> (bf16: ushort bits).
    /// Works for any device and layout (non-contiguous and device tensors are copied through libtorch).
    /// </summary>
    public unsafe void CopyTo<T>(Span<T> destination) where T : unmanaged
    {
        CheckElementType<T>();
        fixed (T* p = destination)
        {
            NativeMethods.Check(NativeMethods.ft_copy_to_host(Handle, (IntPtr)p, (long)destination.Length * sizeof(T)));
        }
    }

    /// <summary>In place: overwrites every element from <paramref name="source"/> (row-major; length = NumElements).</summary>
    public unsafe void CopyFrom<T>(ReadOnlySpan<T> source) where T : unmanaged
    {
        CheckElementType<T>();
        fixed (T* p = source)
        {
            NativeMethods.Check(NativeMethods.ft_copy_from_host(Handle, (IntPtr)p, (long)source.Length * sizeof(T)));
        }
    }

    /// <summary>All elements in row-major order, as a new array (element type must match the dtype).</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        var array = new T[checked((int)NumElements)];
        CopyTo<T>(array);
        return array;
    }

    private void CheckElementType<T>() where T : unmanaged
    {
        var wanted = DTypes.Of<T>();
        var actual = DType;
        if (wanted != actual)
        {
            throw new TorchException(
                $"this tensor is {actual.Name()} but the span holds {typeof(T).Name} ({wanted.Name()}); convert with To(DType.{wanted}) first");
        }
    }
}
