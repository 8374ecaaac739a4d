using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training;

/// <summary>
/// The model's weights and fp32 gradient accumulators in two flat pool buffers owned by the engine (offloaded mode).
/// Every parameter tensor of the model is replaced by a zero-copy view into the weight buffer, so the optimizer's
/// low-precision weight write (through <see cref="HostParameters"/>) lands in the tensors the layers compute with.
/// After each stage's backward, <see cref="Harvest"/> moves the stage's .grad into its fp32 accumulator (copy on the
/// first micro-batch, add after) and clears .grad, so the optimizer reads stable host memory (DESIGN: "grads of
/// layer i: device -> pinned fp32 accumulation buffers"). Dispose gives the model back tensors that own their
/// memory, so the model stays usable after the engine is gone. Each parameter starts at a 64-byte boundary.
/// With parameter offload (<c>residentWeights: false</c>) there is no weight buffer: the weights go to NVMe
/// (<see cref="StreamedWeights"/>), <see cref="HostParameters"/> carry no weight address, and the optimizer takes its
/// initial masters from the weight file.
/// </summary>
internal sealed class ParameterBuffers : IDisposable
{
    internal const string WeightClass = "model weights";
    internal const string GradientClass = "fp32 gradients";
    private const long AlignmentByteCount = 64;

    private readonly LlamaModel _model;
    private readonly HostLease? _weights;
    private readonly HostLease _gradients;
    private readonly Dictionary<NamedParameter, Tensor> _gradientViews = new();
    private readonly HashSet<NamedParameter> _harvested = new();

    public ParameterBuffers(HostMemoryPool pool, LlamaModel model, bool residentWeights = true)
    {
        _model = model;
        _weights = residentWeights ? pool.Rent(WeightClass) : null;
        _gradients = pool.Rent(GradientClass);
        var hostParameters = new List<HostParameter>();
        long weightOffset = 0, gradientOffset = 0;
        ElementType weightType = ElementTypeOf(model.DType);
        Tensor? pending = null;
        try
        {
            using (FineTune.Torch.Torch.NoGrad())
            {
                foreach (NamedParameter parameter in model.Parameters)
                {
                    long[] shape = parameter.Spec.Shape.ToArray();
                    long count = parameter.Spec.ElementCount;
                    nint gradient = _gradients.Buffer.Address + (nint)gradientOffset;
                    nint weight;
                    if (_weights is not null)
                    {
                        weight = _weights.Buffer.Address + (nint)weightOffset;
                        pending = Owned(FineTune.Torch.Torch.FromPointer(weight, shape, model.DType));
                        using (model.UseWeights(parameter)) // a model opened lazily: one parameter read at a time
                            pending.CopyFrom(parameter.Tensor);
                        pending.RequiresGrad = true;
                        parameter.Tensor = pending;
                        pending = null;
                    }
                    else
                    {
                        weight = 0; // parameter offload: the optimizer starts from the weight file (InitialMasters)
                    }
                    _gradientViews[parameter] = Owned(FineTune.Torch.Torch.FromPointer(gradient, shape, DType.Float32));
                    hostParameters.Add(new HostParameter(parameter.Name, count, weight, weightType, gradient, ElementType.Float32));
                    weightOffset += Align(count * weightType.ByteCount());
                    gradientOffset += Align(count * 4);
                }
            }
        }
        catch
        {
            // a failed read (a lazily opened checkpoint): the parameters moved so far get owned copies back, so none
            // points into the pool the engine is about to free
            pending?.Dispose();
            Dispose();
            throw;
        }
        HostParameters = hostParameters;
    }

    /// <summary>Every parameter once, in the model's stable order: weights and fp32 gradients for the optimizer.</summary>
    public IReadOnlyList<HostParameter> HostParameters { get; }

    public static void AddToPlan(PoolPlan plan, LlamaModel model, bool residentWeights = true)
    {
        int weightBytes = ElementTypeOf(model.DType).ByteCount();
        if (residentWeights)
            plan.Add(WeightClass, model.Parameters.Sum(p => Align(p.Spec.ElementCount * weightBytes)), 1);
        plan.Add(GradientClass, model.Parameters.Sum(p => Align(p.Spec.ElementCount * 4)), 1);
    }

    public static ElementType ElementTypeOf(DType dtype) => dtype switch
    {
        DType.Float32 => ElementType.Float32,
        DType.BFloat16 => ElementType.BFloat16,
        DType.Float16 => ElementType.Float16,
        _ => throw new ArgumentException($"parameters of dtype {dtype} cannot be trained; use float32, bfloat16 or float16."),
    };

    /// <summary>Each parameter's element offset in the flat space the optimizer partitions (the model's parameter order, no padding).</summary>
    public static IReadOnlyDictionary<NamedParameter, long> FlatOffsets(LlamaModel model)
    {
        var offsets = new Dictionary<NamedParameter, long>();
        long total = 0;
        foreach (NamedParameter parameter in model.Parameters)
        {
            offsets[parameter] = total;
            total += parameter.Spec.ElementCount;
        }
        return offsets;
    }

    /// <summary>Starts a micro-batch: the first harvest of each parameter in it overwrites (on the window's first micro-batch) or adds.</summary>
    public void BeginMicroBatch() => _harvested.Clear();

    /// <summary>
    /// Moves the .grad of <paramref name="parameters"/> (a stage's weights) into the fp32 accumulators and clears it.
    /// On the window's first micro-batch (<paramref name="first"/>) a parameter's first harvest overwrites and any
    /// later one (a tied embedding: LM head, then embedding) adds; on later micro-batches every harvest adds.
    /// </summary>
    public void Harvest(IReadOnlyList<NamedParameter> parameters, bool first)
    {
        using (FineTune.Torch.Torch.NoGrad())
        {
            foreach (NamedParameter parameter in parameters)
            {
                Tensor accumulator = _gradientViews[parameter];
                bool overwrite = _harvested.Add(parameter) && first;
                using Tensor? grad = parameter.Tensor.Grad;
                if (grad is null)
                {
                    if (overwrite)
                        accumulator.FillInPlace(0);
                    continue;
                }
                if (overwrite)
                    accumulator.CopyFrom(grad);
                else
                    accumulator.AddInPlace(grad);
                parameter.Tensor.Grad = null;
            }
        }
    }

    /// <summary>Gradient buffers as (pointer, type, count) for the norm pass.</summary>
    public IReadOnlyList<(nint Pointer, ElementType Type, long ElementCount)> GradientBuffers =>
        HostParameters.Select(p => (p.Gradient, p.GradientType, p.ElementCount)).ToList();

    public void Dispose()
    {
        using (FineTune.Torch.Torch.NoGrad())
        {
            foreach (NamedParameter parameter in _model.Parameters)
            {
                if (!_gradientViews.TryGetValue(parameter, out Tensor? gradient))
                    continue;
                if (_weights is null)
                {
                    // the weights never lived here (parameter offload): the model's tensors already own their memory
                    gradient.Dispose();
                    continue;
                }
                bool requiresGrad = parameter.Tensor.RequiresGrad;
                parameter.Tensor.Grad = null;
                Tensor owned = Owned(parameter.Tensor.Clone());
                owned.RequiresGrad = requiresGrad;
                parameter.Tensor = owned;
                gradient.Dispose();
            }
        }
        _gradientViews.Clear();
        _weights?.Dispose();
        _gradients.Dispose();
    }

    /// <summary>These tensors outlive whatever scope the caller has open.</summary>
    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;

    private static long Align(long byteCount) => (byteCount + AlignmentByteCount - 1) / AlignmentByteCount * AlignmentByteCount;
}
