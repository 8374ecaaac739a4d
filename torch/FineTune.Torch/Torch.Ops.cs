using FineTune.Torch.Native;

namespace FineTune.Torch;

// Functional ops of a Llama-family forward and backward: linear, matmul, embedding, cross-entropy,
// softmax, SiLU, cat, where, attention. Each records autograd like its PyTorch counterpart.
public static partial class Torch
{
    /// <summary>x W^T + b. x (..., in), W (out, in), b (out) or null; result (..., out).</summary>
    public static unsafe Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        IntPtr r;
        var status = NativeMethods.ft_linear(x.Handle, weight.Handle, bias?.Handle ?? IntPtr.Zero, &r);
        GC.KeepAlive(bias);
        return Tensor.Result(status, r, x, weight);
    }

    /// <summary>torch.matmul: broadcasting batched matrix product.</summary>
    public static unsafe Tensor MatMul(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        IntPtr r;
        return Tensor.Result(NativeMethods.ft_matmul(a.Handle, b.Handle, &r), r, a, b);
    }

    /// <summary>(B, n, m) x (B, m, p) -> (B, n, p).</summary>
    public static unsafe Tensor Bmm(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        IntPtr r;
        return Tensor.Result(NativeMethods.ft_bmm(a.Handle, b.Handle, &r), r, a, b);
    }

    /// <summary>Rows of weight (V, C) picked by int64 ids (...); result (..., C).</summary>
    public static unsafe Tensor Embedding(Tensor weight, Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(ids);
        IntPtr r;
        return Tensor.Result(NativeMethods.ft_embedding(weight.Handle, ids.Handle, &r), r, weight, ids);
    }

    /// <summary>
    /// Cross-entropy of logits (N, C) against int64 class targets (N); targets equal to <paramref name="ignoreIndex"/>
    /// contribute nothing, and Mean divides by the number of non-ignored targets (PyTorch semantics).
    /// </summary>
    public static unsafe Tensor CrossEntropy(Tensor logits, Tensor targets, long ignoreIndex = -100, Reduction reduction = Reduction.Mean)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        IntPtr r;
        var status = NativeMethods.ft_cross_entropy(logits.Handle, targets.Handle, ignoreIndex, (int)reduction, &r);
        return Tensor.Result(status, r, logits, targets);
    }

    public static Tensor Softmax(Tensor x, long dim) => x.Softmax(dim);

    public static Tensor LogSoftmax(Tensor x, long dim) => x.LogSoftmax(dim);

    public static Tensor Silu(Tensor x) => x.Silu();

    public static unsafe Tensor Cat(IReadOnlyList<Tensor> tensors, long dim)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var handles = new IntPtr[tensors.Count];
        for (var i = 0; i < handles.Length; i++)
        {
            handles[i] = tensors[i].Handle;
        }
        IntPtr r;
        fixed (IntPtr* p = handles)
        {
            var status = NativeMethods.ft_cat(p, handles.Length, dim, &r);
            return Tensor.Result(status, r, tensors);
        }
    }

    /// <summary>Joins equally shaped tensors along a new dimension <paramref name="dim"/>.</summary>
    public static unsafe Tensor Stack(IReadOnlyList<Tensor> tensors, long dim)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var handles = new IntPtr[tensors.Count];
        for (var i = 0; i < handles.Length; i++)
        {
            handles[i] = tensors[i].Handle;
        }
        IntPtr r;
        fixed (IntPtr* p = handles)
        {
            var status = NativeMethods.ft_stack(p, handles.Length, dim, &r);
            return Tensor.Result(status, r, tensors);
        }
    }

    /// <summary>Elementwise: condition ? a : b (broadcast; condition is bool).</summary>
    public static unsafe Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        IntPtr r;
        var status = NativeMethods.ft_where(condition.Handle, a.Handle, b.Handle, &r);
        GC.KeepAlive(condition);
        return Tensor.Result(status, r, a, b);
    }

    /// <summary>
    /// softmax(q k^T / sqrt(d)) v over q (..., L, d), k (..., S, d), v (..., S, dv); isCausal masks key j &gt; query i.
    /// libtorch 2.x runs at::scaled_dot_product_attention; 1.13 runs the same math written out (see ops_nn.cpp).
    /// </summary>
    public static unsafe Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, bool isCausal)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        ArgumentNullException.ThrowIfNull(v);
        IntPtr r;
        var status = NativeMethods.ft_scaled_dot_product_attention(q.Handle, k.Handle, v.Handle, isCausal ? 1 : 0, &r);
        GC.KeepAlive(q);
        return Tensor.Result(status, r, k, v);
    }

    /// <summary>True when attention runs libtorch's fused kernel (torch 2.x), false for the written-out path (1.13).</summary>
    public static unsafe bool AttentionIsFused
    {
        get
        {
            int fused;
            NativeMethods.Check(NativeMethods.ft_sdpa_is_fused(&fused));
            return fused != 0;
        }
    }
}
