using System.Text.Json.Nodes;

namespace FineTune.Trainer.Models;

/// <summary>
/// The shape and numerics of a Llama-family decoder (model_type llama, mistral or qwen2), resolved from an HF
/// config.json by <see cref="LlamaConfigReader"/> with transformers' defaults filled in, or built in code for a
/// from-scratch run. Immutable; every derived quantity (head_dim, KV heads) is already resolved here so the model
/// never looks at optional fields.
/// reference: transformers models/llama/configuration_llama.py, models/mistral/configuration_mistral.py,
/// models/qwen2/configuration_qwen2.py.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>"llama", "mistral" or "qwen2".</summary>
    public required string ModelType { get; init; }

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }

    /// <summary>num_key_value_heads; equal to <see cref="HeadCount"/> without GQA. Divides HeadCount.</summary>
    public required int KvHeadCount { get; init; }

    /// <summary>head_dim; hidden_size / num_attention_heads when config.json leaves it out. Even (RoPE halves).</summary>
    public required int HeadDim { get; init; }

    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling RopeScaling { get; init; } = RopeScaling.None;
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public double InitializerRange { get; init; } = 0.02;
    public bool TieWordEmbeddings { get; init; }

    /// <summary>q/k/v (and, for llama's attention_bias, o) projections carry biases. Qwen2: q/k/v only.</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Whether o_proj has a bias too: true for llama/mistral attention_bias, false for qwen2.</summary>
    public bool OutputProjectionBias { get; init; }

    public bool MlpBias { get; init; }

    /// <summary>
    /// Mistral's sliding_window (or Qwen2's when use_sliding_window is true); null when attention is fully causal.
    /// Sequences up to this length attend exactly as full causal attention, so the model accepts those and refuses
    /// longer ones (windowed attention is not implemented).
    /// </summary>
    public int? SlidingWindow { get; init; }

    public int? BosTokenId { get; init; }

    /// <summary>eos_token_id, which config.json may give as an int or a list.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    public int? PadTokenId { get; init; }

    /// <summary>torch_dtype (or dtype) as written in config.json, e.g. "bfloat16"; null when absent.</summary>
    public string? TorchDType { get; init; }

    /// <summary>
    /// The config.json object this was read from, kept so an export writes back every field FineTune does not model
    /// (transformers_version, use_cache, ...). Null for configs built in code.
    /// </summary>
    public JsonObject? Source { get; init; }

    /// <summary>Query heads that share one KV head (GQA group size).</summary>
    public int KvGroupCount => HeadCount / KvHeadCount;

    /// <summary>Width of q_proj's output: num_attention_heads * head_dim.</summary>
    public int QueryWidth => HeadCount * HeadDim;

    /// <summary>Width of k_proj's and v_proj's outputs: num_key_value_heads * head_dim.</summary>
    public int KeyValueWidth => KvHeadCount * HeadDim;

    /// <summary>
    /// Value equality over what defines the model; <see cref="Source"/> (provenance) is ignored and the EOS ids
    /// compare element by element.
    /// </summary>
    public bool Equals(LlamaConfig? other) =>
        other is not null
        && (ModelType, VocabSize, HiddenSize, IntermediateSize, LayerCount, HeadCount, KvHeadCount, HeadDim)
            == (other.ModelType, other.VocabSize, other.HiddenSize, other.IntermediateSize, other.LayerCount, other.HeadCount, other.KvHeadCount, other.HeadDim)
        && (RmsNormEps, RopeTheta, RopeScaling, MaxPositionEmbeddings, InitializerRange, TieWordEmbeddings)
            == (other.RmsNormEps, other.RopeTheta, other.RopeScaling, other.MaxPositionEmbeddings, other.InitializerRange, other.TieWordEmbeddings)
        && (AttentionBias, OutputProjectionBias, MlpBias, SlidingWindow, BosTokenId, PadTokenId, TorchDType)
            == (other.AttentionBias, other.OutputProjectionBias, other.MlpBias, other.SlidingWindow, other.BosTokenId, other.PadTokenId, other.TorchDType)
        && EosTokenIds.SequenceEqual(other.EosTokenIds);

    public override int GetHashCode() => HashCode.Combine(ModelType, VocabSize, HiddenSize, LayerCount, HeadCount, KvHeadCount, HeadDim);

    /// <summary>Checks the invariants the model relies on; the file name goes into every message.</summary>
    public void Validate(string sourceName)
    {
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(LayerCount, "num_hidden_layers");
        Positive(HeadCount, "num_attention_heads");
        Positive(KvHeadCount, "num_key_value_heads");
        Positive(HeadDim, "head_dim");
        Positive(MaxPositionEmbeddings, "max_position_embeddings");
        if (HeadCount % KvHeadCount != 0)
            throw Error($"num_attention_heads ({HeadCount}) must be a multiple of num_key_value_heads ({KvHeadCount})");
        if (HeadDim % 2 != 0)
            throw Error($"head_dim ({HeadDim}) must be even for rotary embeddings");
        if (!(RmsNormEps > 0))
            throw Error($"rms_norm_eps ({RmsNormEps}) must be positive");
        if (!(RopeTheta > 0))
            throw Error($"rope_theta ({RopeTheta}) must be positive");
        if (!(InitializerRange >= 0))
            throw Error($"initializer_range ({InitializerRange}) must not be negative");
        if (SlidingWindow is <= 0)
            throw Error($"sliding_window ({SlidingWindow}) must be positive or null");
        RopeScaling.Validate(sourceName);

        void Positive(int value, string field)
        {
            if (value <= 0)
                throw Error($"{field} ({value}) must be a positive integer");
        }

        UserErrorException Error(string problem) => new($"{sourceName}: {problem}.");
    }
}
