using FineTune.Torch;
using FineTune.Trainer.Models.Lora;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// One Llama decoder layer, pre-norm:
///   h = x + o_proj(attention(rope(q_proj(rms(x))), rope(k_proj(rms(x))), v_proj(rms(x))))
///   y = h + down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
/// with causal softmax attention over GQA heads (each KV head serves KvGroupCount consecutive query heads,
/// transformers' repeat_kv) and optional q/k/v/o and MLP biases.
/// reference: transformers modeling_llama.py LlamaDecoderLayer, LlamaAttention (eager_attention_forward,
/// scaling head_dim^-0.5), LlamaMLP.
/// </summary>
public sealed class DecoderLayer : IModelLayer
{
    private readonly LlamaConfig _config;
    private readonly RotaryEmbedding _rope;
    private readonly Dictionary<string, NamedParameter> _byName;

    internal DecoderLayer(LlamaConfig config, int index, RotaryEmbedding rope, IReadOnlyList<NamedParameter> parameters)
    {
        _config = config;
        _rope = rope;
        Index = index;
        Parameters = parameters;
        Prefix = LlamaTensorNames.LayerPrefix(index);
        _byName = parameters.ToDictionary(p => p.Name[Prefix.Length..], StringComparer.Ordinal);
    }

    public int Index { get; }

    /// <summary>"model.layers.{i}." — every parameter name starts with it.</summary>
    public string Prefix { get; }

    public string Name => $"layer.{Index}";

    public IReadOnlyList<NamedParameter> Parameters { get; }

    /// <summary>LoRA adapters on this layer's projections, or null (attached by <see cref="LoraAdapters.AttachTo"/>).</summary>
    public LoraLayer? Lora { get; internal set; }

    /// <summary>x (B, T, C) -> (B, T, C), computing with <paramref name="weights"/>.</summary>
    public Tensor Forward(Tensor input, StageWeights weights)
    {
        long batch = input.Shape[0], sequenceLength = input.Shape[1];
        if (_config.SlidingWindow is int window && sequenceLength > window)
            throw new UserErrorException(
                $"sequences of {sequenceLength} tokens exceed the model's sliding_window ({window}), and windowed attention is not implemented; use sequences of at most {window} tokens.");

        using (TensorScope.Enter())
        {
            Tensor W(string localName) => weights[_byName[localName]];
            // x (B, T, in) -> W x + b (B, T, out) of the projection at module, plus its LoRA update when it has one
            Tensor Project(Tensor x, string module)
            {
                Tensor y = Linear(x, W(module + ".weight"), _byName.TryGetValue(module + ".bias", out var bias) ? weights[bias] : null);
                return Lora is null ? y : Lora.Apply(module, x, y);
            }
            Tensor h = RmsNorm.Apply(input, W("input_layernorm.weight"), _config.RmsNormEps);
            Tensor attention = Attention(h, batch, sequenceLength, Project);
            Tensor x = input + Project(attention, "self_attn.o_proj");

            Tensor m = RmsNorm.Apply(x, W("post_attention_layernorm.weight"), _config.RmsNormEps);
            Tensor gate = Project(m, "mlp.gate_proj");
            Tensor up = Project(m, "mlp.up_proj");
            Tensor mlp = Project(gate.Silu() * up, "mlp.down_proj");
            return (x + mlp).MoveToOuterScope();
        }
    }

    public Tensor? Backward(Tensor input, Tensor outputGrad, StageWeights weights) =>
        LayerRecompute.Backward(x => Forward(x, weights), input, outputGrad, inputHasGrad: true);

    /// <summary>h (B, T, C) normed -> attention output (B, T, H*D) before o_proj.</summary>
    private Tensor Attention(Tensor h, long batch, long sequenceLength, Func<Tensor, string, Tensor> Project)
    {
        long heads = _config.HeadCount, kvHeads = _config.KvHeadCount, headDim = _config.HeadDim;
        // (B, T, H*D) -> (B, H, T, D)
        Tensor q = Project(h, "self_attn.q_proj").View(batch, sequenceLength, heads, headDim).Transpose(1, 2);
        Tensor k = Project(h, "self_attn.k_proj").View(batch, sequenceLength, kvHeads, headDim).Transpose(1, 2);
        Tensor v = Project(h, "self_attn.v_proj").View(batch, sequenceLength, kvHeads, headDim).Transpose(1, 2);

        var (cos, sin) = _rope.Tables(sequenceLength, h.Device, h.DType);
        q = _rope.Apply(q, cos, sin);
        k = _rope.Apply(k, cos, sin);
        if (_config.KvGroupCount > 1)
        {
            // repeat_kv: KV head j serves query heads j*G .. j*G+G-1.
            k = k.RepeatInterleave(_config.KvGroupCount, 1);
            v = v.RepeatInterleave(_config.KvGroupCount, 1);
        }
        // softmax(q k^T / sqrt(D) + causal mask) v: (B, H, T, D)
        Tensor attended = ScaledDotProductAttention(q, k, v, isCausal: true);
        return attended.Transpose(1, 2).Reshape(batch, sequenceLength, heads * headDim);
    }
}
