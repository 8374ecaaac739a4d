using FineTune.Torch.Native;

namespace FineTune.Torch;

// Views and layout: View, Reshape, Expand, Permute, Transpose, Narrow, RepeatInterleave, (Un)Squeeze.
public sealed partial class Tensor
{
    /// <summary>A view with a new shape over the same storage (one dimension may be -1); fails when strides forbid it.</summary>
    public unsafe Tensor View(params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IntPtr r;
        fixed (long* p = shape)
        {
            return Result(NativeMethods.ft_view(Handle, p, shape.Length, &r), r, this);
        }
    }

    /// <summary>Like <see cref="View"/>, copying when the layout requires it.</summary>
    public unsafe Tensor Reshape(params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IntPtr r;
        fixed (long* p = shape)
        {
            return Result(NativeMethods.ft_reshape(Handle, p, shape.Length, &r), r, this);
        }
    }

    /// <summary>Broadcast view: size-1 dimensions repeat to the given sizes (-1 keeps a size), no copy.</summary>
    public unsafe Tensor Expand(params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IntPtr r;
        fixed (long* p = shape)
        {
            return Result(NativeMethods.ft_expand(Handle, p, shape.Length, &r), r, this);
        }
    }

    public unsafe Tensor Permute(params long[] order)
    {
        ArgumentNullException.ThrowIfNull(order);
        IntPtr r;
        fixed (long* p = order)
        {
            return Result(NativeMethods.ft_permute(Handle, p, order.Length, &r), r, this);
        }
    }

    public unsafe Tensor Transpose(long dim0, long dim1)
    {
        IntPtr r;
        return Result(NativeMethods.ft_transpose(Handle, dim0, dim1, &r), r, this);
    }

    /// <summary>A view of elements [start, start + length) along <paramref name="dim"/>.</summary>
    public unsafe Tensor Narrow(long dim, long start, long length)
    {
        IntPtr r;
        return Result(NativeMethods.ft_narrow(Handle, dim, start, length, &r), r, this);
    }

    /// <summary>Repeats each slice along <paramref name="dim"/> <paramref name="repeats"/> times in a row (GQA key/value heads).</summary>
    public unsafe Tensor RepeatInterleave(long repeats, long dim)
    {
        IntPtr r;
        return Result(NativeMethods.ft_repeat_interleave(Handle, repeats, dim, &r), r, this);
    }

    public unsafe Tensor Unsqueeze(long dim)
    {
        IntPtr r;
        return Result(NativeMethods.ft_unsqueeze(Handle, dim, &r), r, this);
    }

    public unsafe Tensor Squeeze(long dim)
    {
        IntPtr r;
        return Result(NativeMethods.ft_squeeze(Handle, dim, &r), r, this);
    }
}
