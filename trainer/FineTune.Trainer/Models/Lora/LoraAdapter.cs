using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// The low-rank update of one frozen projection W (out, in):
///   y = W x + b + (alpha / r) * B (A (dropout(x)))      A: (r, in), B: (out, r), both float32
/// computed side by side with the base projection, which runs first and is never changed. A starts
/// Kaiming-uniform with a = sqrt(5), i.e. uniform(-1/sqrt(in), 1/sqrt(in)), and B at zero, so a fresh adapter
/// leaves the model's output bit for bit as it was. The adapter's arithmetic is float32 whatever the base's dtype:
/// a bf16 input is widened, the update added to the widened base output, and the sum rounded back once, as PEFT
/// does with float32 adapters on a bf16 model. Backward is autograd's: A and B are leaves that require grad, so
/// the recompute of a layer accumulates their .grad and passes the input's gradient through W and through B A.
/// Merging folds the update into the weight: W' = W + (alpha / r) B A (<see cref="MergeInto"/>).
/// reference: peft tuners/lora/layer.py Linear.forward, reset_lora_parameters (kaiming_uniform_(a=sqrt(5)),
/// zeros_), get_delta_weight; torch.nn.init.kaiming_uniform_ (gain sqrt(2 / (1 + a^2)), bound gain sqrt(3 / fan_in)).
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    internal LoraAdapter(int layer, string module, NamedParameter a, NamedParameter b, double scale)
    {
        Layer = layer;
        Module = module;
        ModuleName = LoraTargets.ModuleName(layer, module);
        A = a;
        B = b;
        Scale = scale;
    }

    public int Layer { get; }

    /// <summary>"q_proj" ... "down_proj" (<see cref="LoraTargets.Modules"/>).</summary>
    public string Module { get; }

    /// <summary>The adapted projection's HF module name: "model.layers.0.self_attn.q_proj".</summary>
    public string ModuleName { get; }

    /// <summary>The frozen weight this adapter adds to: ModuleName + ".weight".</summary>
    public string BaseWeightName => ModuleName + ".weight";

    /// <summary>ModuleName.lora_A.weight, (r, in) float32.</summary>
    public NamedParameter A { get; }

    /// <summary>ModuleName.lora_B.weight, (out, r) float32.</summary>
    public NamedParameter B { get; }

    public int Rank => checked((int)A.Spec.Shape[0]);

    /// <summary>alpha / r.</summary>
    public double Scale { get; }

    public long ParameterCount => A.Spec.ElementCount + B.Spec.ElementCount;

    /// <summary>
    /// A fresh adapter: A ~ uniform(-1/sqrt(in), 1/sqrt(in)) from <paramref name="generator"/> (drawn in float32 on
    /// the CPU, then moved), B = 0; both leaves that require grad.
    /// </summary>
    internal static LoraAdapter Create(LlamaConfig config, int layer, string module, int rank, double scale, Generator generator, Device device)
    {
        var (inFeatures, outFeatures) = LoraTargets.Features(config, module);
        // kaiming_uniform_(a = sqrt(5)) on (r, in): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / in) = 1 / sqrt(in).
        double bound = 1.0 / Math.Sqrt(inFeatures);
        Tensor a, b;
        using (TensorScope.Enter())
        {
            a = (Rand([rank, inFeatures], generator) * (2 * bound) - bound).To(device).MoveToOuterScope();
            b = Zeros([outFeatures, rank], DType.Float32, device).MoveToOuterScope();
        }
        return FromTensors(config, layer, module, a, b, scale);
    }

    /// <summary>An adapter over given float32 tensors A (r, in) and B (out, r), which it takes ownership of.</summary>
    internal static LoraAdapter FromTensors(LlamaConfig config, int layer, string module, Tensor a, Tensor b, double scale)
    {
        var (inFeatures, outFeatures) = LoraTargets.Features(config, module);
        string name = LoraTargets.ModuleName(layer, module);
        long rank = a.Shape[0];
        a.RequiresGrad = true;
        b.RequiresGrad = true;
        return new LoraAdapter(layer, module,
            new NamedParameter(new ParameterSpec(name + ".lora_A.weight", [rank, inFeatures]), a),
            new NamedParameter(new ParameterSpec(name + ".lora_B.weight", [outFeatures, rank]), b),
            scale);
    }

    /// <summary>
    /// x (B, T, in), y = the base projection's output (B, T, out) -> y + scale * B(A(dropout(x))) in y's dtype.
    /// <paramref name="dropout"/> is (p, mask seed) while training with p &gt; 0, else null: then no mask is drawn.
    /// </summary>
    internal Tensor Apply(Tensor x, Tensor y, (double Probability, long Seed)? dropout)
    {
        using (TensorScope.Enter())
        {
            Tensor h = x.To(DType.Float32);                               // (B, T, in) f32
            if (dropout is var (p, seed))
                h = LoraDropout.Apply(h, p, seed);
            Tensor delta = Linear(Linear(h, A.Tensor), B.Tensor) * Scale;   // (B, T, r) -> (B, T, out) f32
            Tensor sum = y.DType == DType.Float32 ? y + delta : (y.To(DType.Float32) + delta).To(y.DType);
            return sum.MoveToOuterScope();
        }
    }

    /// <summary>(alpha / r) B A: (out, in) float32, without autograd.</summary>
    public Tensor DeltaWeight()
    {
        using (TensorScope.Enter())
        using (NoGrad())
            return (MatMul(B.Tensor, A.Tensor) * Scale).MoveToOuterScope();
    }

    /// <summary>W' = W + (alpha / r) B A for the base weight <paramref name="weight"/> (out, in), in float32.</summary>
    public Tensor MergeInto(Tensor weight)
    {
        using (TensorScope.Enter())
        using (NoGrad())
        {
            Tensor w = weight.Detach().To(DType.Float32);
            return (w + DeltaWeight()).MoveToOuterScope();
        }
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
