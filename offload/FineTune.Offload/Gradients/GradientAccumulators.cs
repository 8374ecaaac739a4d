using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Parameters;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>
/// fp32 gradient accumulators for every parameter in one pool buffer (the layout's gradient offsets, 64-byte aligned):
/// after each stage's backward, <see cref="Harvest"/> moves a parameter's .grad into its accumulator (copy on the
/// window's first micro-batch, add after) so the optimizer reads stable host memory and autograd's tensors can go.
/// DESIGN: "grads of layer i: device -> pinned fp32 accumulation buffers".
/// </summary>
public sealed class GradientAccumulators : IDisposable
{
    private readonly ParameterLayout _layout;
    private readonly HostLease _buffer;
    private readonly Tensor[] _views;
    private readonly HashSet<(int Parameter, long FirstRow)> _harvested = new();

    public GradientAccumulators(ParameterLayout layout, HostMemoryPool pool)
    {
        _layout = layout;
        _buffer = pool.Rent(BufferKind.GradientAccumulators);
        _views = new Tensor[layout.Parameters.Count];
        for (int p = 0; p < _views.Length; p++)
        {
            Tensor view = FineTune.Torch.Torch.FromPointer(Address(p), layout.Parameters[p].Shape, DType.Float32);
            _views[p] = TensorScope.Current?.Detach(view) ?? view;
        }
    }

    public static void AddToPlan(PoolPlan plan, ParameterLayout layout) =>
        plan.Add(BufferKind.GradientAccumulators, layout.GradientByteCount, 1);

    /// <summary>Host address of <paramref name="parameter"/>'s fp32 accumulator.</summary>
    public unsafe nint Address(int parameter) => (nint)(_buffer.Pointer + _layout.GradientByteOffset(parameter));

    /// <summary>Every accumulator as (pointer, type, count), in layout order, for the norm pass.</summary>
    public IReadOnlyList<(nint Pointer, ElementType Type, long ElementCount)> Buffers =>
        Enumerable.Range(0, _views.Length).Select(p => (Address(p), ElementType.Float32, _layout.Parameters[p].ElementCount)).ToList();

    /// <summary>Starts a micro-batch: the first harvest of each parameter in it overwrites (on the window's first micro-batch) or adds.</summary>
    public void BeginMicroBatch() => _harvested.Clear();

    /// <summary>
    /// Moves <paramref name="weight"/>'s .grad into <paramref name="parameter"/>'s accumulator and clears it. On the
    /// window's first micro-batch (<paramref name="first"/>) a parameter's first harvest overwrites and any later one
    /// (a tied embedding: LM head, then embedding) adds; on later micro-batches every harvest adds. A parameter with
    /// no gradient is zeroed on an overwrite.
    /// </summary>
    public void Harvest(int parameter, Tensor weight, bool first)
    {
        using (FineTune.Torch.Torch.NoGrad())
        {
            Tensor accumulator = _views[parameter];
            bool overwrite = _harvested.Add((parameter, -1)) && first;
            using Tensor? grad = weight.Grad;
            if (grad is null)
            {
                if (overwrite)
                    accumulator.FillInPlace(0);
                return;
            }
            if (overwrite)
                accumulator.CopyFrom(grad);
            else
                accumulator.AddInPlace(grad);
            weight.Grad = null;
        }
    }

    /// <summary>
    /// As <see cref="Harvest"/> for rows [<paramref name="firstRow"/>, + rows) of a blocked edge weight, from the block's
    /// leaf <paramref name="block"/> (its .grad is those rows' gradient; null: the block saw no token, a zero gradient).
    /// </summary>
    public void HarvestRows(int parameter, long firstRow, long rows, Tensor? block, bool first)
    {
        using (FineTune.Torch.Torch.NoGrad())
        using (TensorScope.Enter())
        {
            Tensor accumulator = _views[parameter].Narrow(0, firstRow, rows);
            bool overwrite = _harvested.Add((parameter, firstRow)) && first;
            Tensor? grad = block?.Grad;
            if (grad is null)
            {
                if (overwrite)
                    accumulator.FillInPlace(0);
                return;
            }
            if (overwrite)
                accumulator.CopyFrom(grad);
            else
                accumulator.AddInPlace(grad);
            block!.Grad = null;
        }
    }

    public void Dispose()
    {
        foreach (Tensor view in _views)
            view.Dispose();
        _buffer.Dispose();
    }
}
