using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// HF-layout rotary position embeddings ("rotate_half"): cos/sin tables of shape (T, head_dim) built as
/// emb = cat(freqs, freqs) with freqs[t, i] = t * inv_freq[i] in float32, then cast to the compute dtype; applied
/// as x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1). Tables are built once per
/// (sequence length, device, dtype) and kept until Dispose. Not the interleaved-pair (Meta) layout: HF weights
/// have their q/k rows permuted for this one.
/// reference: transformers modeling_llama.py LlamaRotaryEmbedding.forward, rotate_half, apply_rotary_pos_emb.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly float[] _inverseFrequencies;
    private readonly Dictionary<(long SequenceLength, Device Device, DType DType), (Tensor Cos, Tensor Sin)> _tables = new();
    private readonly Lock _lock = new();

    public RotaryEmbedding(LlamaConfig config)
    {
        HeadDim = config.HeadDim;
        _inverseFrequencies = config.RopeScaling.InverseFrequencies(config.HeadDim, config.RopeTheta);
    }

    public int HeadDim { get; }

    /// <summary>The cached (T, head_dim) cos and sin tables. Owned by this object: callers must not dispose them.</summary>
    public (Tensor Cos, Tensor Sin) Tables(long sequenceLength, Device device, DType dtype)
    {
        lock (_lock)
        {
            if (_tables.TryGetValue((sequenceLength, device, dtype), out var cached))
                return cached;
            var freqs = new float[sequenceLength * HeadDim];
            int half = HeadDim / 2;
            for (long t = 0; t < sequenceLength; t++)
            {
                for (int i = 0; i < half; i++)
                {
                    float angle = t * _inverseFrequencies[i];   // float32 product, as the float32 matmul in HF
                    freqs[t * HeadDim + i] = angle;
                    freqs[t * HeadDim + half + i] = angle;
                }
            }
            (Tensor Cos, Tensor Sin) tables;
            using (AllocationCapture.Suspend()) // a cache outlives the graph of the layer that first asks for it: never spilled with it
            using (TensorScope.Enter())
            using (NoGrad())
            {
                // cos/sin computed by libtorch in float32 on the CPU (the same kernels as the reference), then moved.
                Tensor emb = FromArray(freqs, [sequenceLength, HeadDim]);
                tables = (emb.Cos().To(device, dtype), emb.Sin().To(device, dtype));
                TensorScope.Current!.Detach(tables.Cos);
                TensorScope.Current!.Detach(tables.Sin);
            }
            _tables[(sequenceLength, device, dtype)] = tables;
            return tables;
        }
    }

    /// <summary>x (B, H, T, D) -> x * cos + rotate_half(x) * sin, with cos/sin (T, D) broadcast.</summary>
    public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = HeadDim / 2;
        Tensor x1 = x.Narrow(-1, 0, half);
        Tensor x2 = x.Narrow(-1, half, half);
        Tensor rotated = Cat([-x2, x1], -1);
        return x * cos + rotated * sin;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var (cos, sin) in _tables.Values)
            {
                cos.Dispose();
                sin.Dispose();
            }
            _tables.Clear();
        }
    }
}
