using FineTune.Torch.Native;

namespace FineTune.Torch;

// Autograd over several outputs or a sub-graph, grad mode, and runtime settings (seed, threads).
public static partial class Torch
{
    /// <summary>
    /// torch.autograd.grad: returns d(outputs)/d(inputs) contracted with <paramref name="gradOutputs"/>
    /// (one per output, same shape; null entries only for single-element outputs). No .Grad is touched.
    /// An input the outputs do not depend on gets null when <paramref name="allowUnused"/>, else an error.
    /// </summary>
    public static unsafe Tensor?[] Grad(Tensor[] outputs, Tensor[] inputs, Tensor?[]? gradOutputs = null,
        bool retainGraph = false, bool allowUnused = false)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(inputs);
        var outs = Handles(outputs);
        var grads = GradHandles(gradOutputs, outputs.Length);
        var ins = Handles(inputs);
        var results = new IntPtr[inputs.Length];
        int status;
        fixed (IntPtr* o = outs, g = grads, i = ins, r = results)
        {
            status = NativeMethods.ft_autograd_grad(o, g, outs.Length, i, ins.Length, retainGraph ? 1 : 0, allowUnused ? 1 : 0, r);
        }
        GC.KeepAlive(outputs);
        GC.KeepAlive(inputs);
        GC.KeepAlive(gradOutputs);
        NativeMethods.Check(status);
        var tensors = new Tensor?[results.Length];
        for (var k = 0; k < results.Length; k++)
        {
            tensors[k] = results[k] == IntPtr.Zero ? null : new Tensor(results[k]);
        }
        return tensors;
    }

    /// <summary>
    /// torch.autograd.backward: accumulates into the .Grad of every leaf the outputs depend on. This is how a
    /// recomputed layer is back-propagated: outputs = [layer output], gradOutputs = [dL/d output].
    /// </summary>
    public static unsafe void Backward(Tensor[] outputs, Tensor?[]? gradOutputs = null, bool retainGraph = false)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var outs = Handles(outputs);
        var grads = GradHandles(gradOutputs, outputs.Length);
        int status;
        fixed (IntPtr* o = outs, g = grads)
        {
            status = NativeMethods.ft_backward(o, g, outs.Length, retainGraph ? 1 : 0);
        }
        GC.KeepAlive(outputs);
        GC.KeepAlive(gradOutputs);
        NativeMethods.Check(status);
    }

    /// <summary>Whether ops on this thread record autograd graphs.</summary>
    public static unsafe bool IsGradEnabled
    {
        get
        {
            int enabled;
            NativeMethods.Check(NativeMethods.ft_grad_enabled(&enabled));
            return enabled != 0;
        }
    }

    /// <summary>`using (Torch.NoGrad()) { ... }`: no autograd recording on this thread until disposed (restores the previous mode).</summary>
    public static IDisposable NoGrad() => new GradModeScope(enabled: false);

    /// <summary>Re-enables autograd recording inside a <see cref="NoGrad"/> region (torch.enable_grad).</summary>
    public static IDisposable EnableGrad() => new GradModeScope(enabled: true);

    /// <summary>Seeds libtorch's default generators on every device (torch.manual_seed).</summary>
    public static void ManualSeed(long seed) => NativeMethods.Check(NativeMethods.ft_manual_seed(unchecked((ulong)seed)));

    /// <summary>Threads libtorch uses for intra-op parallelism on the CPU (torch.set_num_threads).</summary>
    public static void SetNumThreads(int threadCount) => NativeMethods.Check(NativeMethods.ft_set_num_threads(threadCount));

    public static unsafe int NumThreads
    {
        get
        {
            int count;
            NativeMethods.Check(NativeMethods.ft_get_num_threads(&count));
            return count;
        }
    }

    private static IntPtr[] Handles(Tensor[] tensors)
    {
        var handles = new IntPtr[tensors.Length];
        for (var i = 0; i < tensors.Length; i++)
        {
            handles[i] = tensors[i].Handle;
        }
        return handles;
    }

    private static IntPtr[] GradHandles(Tensor?[]? grads, int outputCount)
    {
        var handles = new IntPtr[outputCount];
        if (grads == null)
        {
            return handles;
        }
        if (grads.Length != outputCount)
        {
            throw new ArgumentException($"{grads.Length} output gradients were given for {outputCount} outputs", nameof(grads));
        }
        for (var i = 0; i < outputCount; i++)
        {
            handles[i] = grads[i]?.Handle ?? IntPtr.Zero;
        }
        return handles;
    }
}
