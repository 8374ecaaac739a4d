namespace FineTune.Trainer.Recipes;

/// <summary>
/// model.config: a Llama architecture given inline, for training from scratch (field names and defaults as
/// transformers' LlamaConfig, FORMATS.md §2.3). Not the loader of a checkpoint's config.json.
/// </summary>
public sealed record LlamaConfigSection
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    /// <summary>Resolved: num_key_value_heads, or num_attention_heads when the recipe leaves it null.</summary>
    public required int NumKeyValueHeads { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required double RopeTheta { get; init; }
    public required double RmsNormEps { get; init; }
    public required double InitializerRange { get; init; }
    public required bool TieWordEmbeddings { get; init; }

    internal static LlamaConfigSection From(RecipeValues v) => new()
    {
        VocabSize = v.Int("model.config.vocab_size"),
        HiddenSize = v.Int("model.config.hidden_size"),
        IntermediateSize = v.Int("model.config.intermediate_size"),
        NumHiddenLayers = v.Int("model.config.num_hidden_layers"),
        NumAttentionHeads = v.Int("model.config.num_attention_heads"),
        NumKeyValueHeads = v.NullableInt("model.config.num_key_value_heads") ?? v.Int("model.config.num_attention_heads"),
        MaxPositionEmbeddings = v.Int("model.config.max_position_embeddings"),
        RopeTheta = v.Double("model.config.rope_theta"),
        RmsNormEps = v.Double("model.config.rms_norm_eps"),
        InitializerRange = v.Double("model.config.initializer_range"),
        TieWordEmbeddings = v.Bool("model.config.tie_word_embeddings"),
    };
}
