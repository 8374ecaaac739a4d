using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>
/// libtorch's own torch::optim::AdamW over a list of leaf tensors: the reference FineTune's optimizers are tested
/// against and the baseline their benchmarks compare with. The optimizer holds its own references to the
/// parameters and updates them in place; this object does not own (dispose) the caller's Tensors.
/// reference: Loshchilov &amp; Hutter, "Decoupled Weight Decay Regularization" (2019), algorithm 2; torch/optim/adamw.cpp.
/// </summary>
public sealed class TorchAdamW : IDisposable
{
    private readonly OpaqueHandle _handle;

    public unsafe TorchAdamW(IReadOnlyList<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9,
        double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 1e-2)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var handles = new IntPtr[parameters.Count];
        for (var i = 0; i < handles.Length; i++)
        {
            handles[i] = parameters[i].Handle;
        }
        IntPtr r;
        fixed (IntPtr* p = handles)
        {
            NativeMethods.Check(NativeMethods.ft_adamw_new(p, handles.Length, learningRate, beta1, beta2, epsilon, weightDecay, &r));
        }
        GC.KeepAlive(parameters);
        _handle = new OpaqueHandle(r, NativeMethods.ft_adamw_free);
    }

    /// <summary>The learning rate of every parameter group (settable between steps, e.g. by a schedule).</summary>
    public unsafe double LearningRate
    {
        get
        {
            double lr;
            NativeMethods.Check(NativeMethods.ft_adamw_get_lr(Handle, &lr));
            return lr;
        }
        set => NativeMethods.Check(NativeMethods.ft_adamw_set_lr(Handle, value));
    }

    private IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    /// <summary>One AdamW update of every parameter from its current .Grad (parameters without a gradient are skipped).</summary>
    public void Step() => NativeMethods.Check(NativeMethods.ft_adamw_step(Handle));

    /// <summary>Clears the parameters' gradients (libtorch's zero_grad).</summary>
    public void ZeroGrad() => NativeMethods.Check(NativeMethods.ft_adamw_zero_grad(Handle));

    public void Dispose() => _handle.Dispose();
}
