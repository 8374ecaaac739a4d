using FineTune.Torch;
using FineTune.Trainer.Models;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Generation;

/// <summary>
/// Incremental decoding for a <see cref="LlamaModel"/>: the prompt goes through the model once (prefill, causal
/// attention), filling a <see cref="KvCache"/>; each new token then runs through every layer alone, attending to the
/// cached keys and values. The layer math is <see cref="DecoderLayer"/>'s, written out here for one chunk of
/// positions at an offset (RoPE rows [p, p + T), keys and values appended to the cache), reading the weights
/// through the model's weight source stage by stage (<see cref="LlamaModel.Weights"/> leases, so a model whose weights
/// are streamed still works). With <see cref="GenerationOptions.UseKvCache"/> off, every step runs
/// <see cref="LlamaModel.Forward"/> over the whole sequence instead: slower, and what the cached path must equal.
/// reference: transformers LlamaAttention with DynamicCache (past_key_values), GenerationMixin._sample.
/// </summary>
public sealed class LlamaGenerator : IDisposable
{
    private readonly LlamaModel _model;
    private readonly LlamaConfig _config;
    private readonly RotaryEmbedding _rope;
    private readonly Dictionary<string, NamedParameter>[] _layerWeights;

    public LlamaGenerator(LlamaModel model)
    {
        _model = model;
        _config = model.Config;
        _rope = new RotaryEmbedding(_config);
        _layerWeights = model.Layers
            .Select(layer => layer.Parameters.ToDictionary(p => p.Name[layer.Prefix.Length..], StringComparer.Ordinal))
            .ToArray();
    }

    /// <summary>
    /// Generates after <paramref name="promptIds"/>, calling <paramref name="onToken"/> with each token as soon as it
    /// is known not to begin a stop sequence (for streaming); returns the new tokens without the stop sequence, and
    /// whether one ended the generation.
    /// </summary>
    public (List<int> Tokens, bool Stopped) Generate(IReadOnlyList<int> promptIds, GenerationOptions options, Action<int>? onToken = null)
    {
        if (promptIds.Count == 0)
            throw new UserErrorException("the prompt encodes to no tokens; give a non-empty prompt.");
        int limit = _config.SlidingWindow is int window ? Math.Min(window, _config.MaxPositionEmbeddings) : _config.MaxPositionEmbeddings;
        if (promptIds.Count >= limit)
            throw new UserErrorException($"the prompt has {promptIds.Count} tokens, and the model attends to at most {limit}; give a shorter prompt.");
        int capacity = Math.Min(limit, promptIds.Count + options.MaxNewTokenCount);
        var sampler = new Sampler(options.Sampling);
        var stops = new StopMatcher(options.StopSequences);
        var sequence = promptIds.Select(id => (long)id).ToList();
        int generatedCount = 0;
        using KvCache? cache = options.UseKvCache ? new KvCache(_config.LayerCount, _config.KvHeadCount, _config.HeadDim, capacity, _model.DType, _model.Device) : null;
        using (NoGrad())
        {
            float[] logits = cache is null ? FullForward(sequence) : Step(sequence, cache);
            while (true)
            {
                int next = sampler.Next(logits);
                generatedCount++;
                sequence.Add(next);
                bool stopped = stops.Add(next, onToken);
                if (stopped || generatedCount >= options.MaxNewTokenCount || sequence.Count >= capacity)
                {
                    if (!stopped)
                        stops.Flush(onToken);
                    return (stops.Accepted, stopped);
                }
                logits = cache is null ? FullForward(sequence) : Step([next], cache);
            }
        }
    }

    /// <summary>The no-cache reference: logits (V) of the last position after running the whole sequence.</summary>
    private float[] FullForward(List<long> sequence)
    {
        using var scope = TensorScope.Enter();
        Tensor ids = FromArray(sequence.ToArray(), [1, sequence.Count]).To(_model.Device);
        return LastLogits(_model.Forward(ids));
    }

    /// <summary>ids (T new positions after the cache's) -> logits (V) of the last one, appending to the cache.</summary>
    private float[] Step(IReadOnlyList<long> ids, KvCache cache)
    {
        using var scope = TensorScope.Enter();
        int offset = cache.Length, count = ids.Count;
        Tensor x;
        using (StageWeights w = _model.Weights.Acquire(0, +1))
            x = Embedding(w[_model.Embedding.Weight], FromArray(ids.ToArray(), [1, count]).To(_model.Device)); // (1, T, C)
        var (cos, sin) = _rope.Tables(cache.Capacity, _model.Device, _model.DType); // one table per generation, cached by the rope
        cos = cos.Narrow(0, offset, count); // (T, D): the rows of positions [offset, offset + T)
        sin = sin.Narrow(0, offset, count);
        for (int i = 0; i < _config.LayerCount; i++)
        {
            using StageWeights w = _model.Weights.Acquire(i + 1, +1);
            x = Layer(i, x, cos, sin, cache, w);
        }
        cache.Advance(count);
        Tensor last = x.Narrow(1, count - 1, 1); // (1, 1, C)
        using (StageWeights w = _model.Weights.Acquire(_config.LayerCount + 1, +1))
            last = RmsNorm.Apply(last, w[_model.FinalNorm.Weight], _config.RmsNormEps);
        using (StageWeights w = _model.Weights.Acquire(_config.LayerCount + 2, 0))
            return LastLogits(Linear(last, w[_model.LmHead.Weight])); // (1, 1, V)
    }

    /// <summary>One decoder layer on x (1, T, C) at the cache's offset, as <see cref="DecoderLayer.Forward"/> computes it.</summary>
    private Tensor Layer(int layer, Tensor x, Tensor cos, Tensor sin, KvCache cache, StageWeights weights)
    {
        Tensor W(int l, string name) => weights[_layerWeights[l][name]];
        Tensor? B(int l, string name) => _layerWeights[l].TryGetValue(name, out NamedParameter? p) ? weights[p] : null;
        long count = x.Shape[1];
        long heads = _config.HeadCount, kvHeads = _config.KvHeadCount, headDim = _config.HeadDim;
        Tensor h = RmsNorm.Apply(x, W(layer, "input_layernorm.weight"), _config.RmsNormEps);
        // (1, T, H*D) -> (1, H, T, D)
        Tensor q = Linear(h, W(layer, "self_attn.q_proj.weight"), B(layer, "self_attn.q_proj.bias")).View(1, count, heads, headDim).Transpose(1, 2);
        Tensor k = Linear(h, W(layer, "self_attn.k_proj.weight"), B(layer, "self_attn.k_proj.bias")).View(1, count, kvHeads, headDim).Transpose(1, 2);
        Tensor v = Linear(h, W(layer, "self_attn.v_proj.weight"), B(layer, "self_attn.v_proj.bias")).View(1, count, kvHeads, headDim).Transpose(1, 2);
        q = _rope.Apply(q, cos, sin);
        k = _rope.Apply(k, cos, sin);
        bool prefill = cache.Length == 0;
        if (!prefill && count != 1)
            throw new InvalidOperationException("after the prefill, positions are decoded one at a time");
        var (keys, values) = cache.Append(layer, k, v); // (1, KvH, L, D), L = positions so far
        if (_config.KvGroupCount > 1)
        {
            keys = keys.RepeatInterleave(_config.KvGroupCount, 1);
            values = values.RepeatInterleave(_config.KvGroupCount, 1);
        }
        // The prefill is causal over its own positions; one new position may attend to every cached one.
        Tensor attended = ScaledDotProductAttention(q, keys, values, isCausal: prefill); // (1, H, T, D)
        Tensor o = attended.Transpose(1, 2).Reshape(1, count, heads * headDim);
        x = x + Linear(o, W(layer, "self_attn.o_proj.weight"), B(layer, "self_attn.o_proj.bias"));
        Tensor m = RmsNorm.Apply(x, W(layer, "post_attention_layernorm.weight"), _config.RmsNormEps);
        Tensor gate = Linear(m, W(layer, "mlp.gate_proj.weight"), B(layer, "mlp.gate_proj.bias"));
        Tensor up = Linear(m, W(layer, "mlp.up_proj.weight"), B(layer, "mlp.up_proj.bias"));
        return x + Linear(gate.Silu() * up, W(layer, "mlp.down_proj.weight"), B(layer, "mlp.down_proj.bias"));
    }

    /// <summary>(1, T, V) logits -> the last position's as float32 on the CPU.</summary>
    private static float[] LastLogits(Tensor logits) =>
        logits.Narrow(1, logits.Shape[1] - 1, 1).To(Device.Cpu, DType.Float32).Contiguous().ToArray<float>();

    public void Dispose() => _rope.Dispose();
}
