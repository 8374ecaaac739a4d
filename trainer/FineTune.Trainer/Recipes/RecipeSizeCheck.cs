using System.Globalization;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// Sizes checked before anything is allocated, read or looped over, so a hostile or mistyped number is a sentence
/// instead of an hour-long loop or an out-of-memory kill (issue 21). Model dimensions must lie in plausible
/// bounds (far above any released Llama-family model) and give a parameter count without overflow; the tokenizer's
/// vocabulary must fit the model's embedding (issue 22: it crashed mid-run with "index out of range"); the
/// batch geometry's logits must fit the host budget; the synthetic dataset must be generatable in seconds.
/// `validate`, `plan` and `run` all run these (they are part of recipe validation).
/// </summary>
internal static class RecipeSizeCheck
{
    public const long MaxVocabSize = 1L << 24;
    public const long MaxHiddenSize = 1L << 17;
    public const long MaxLayers = 1024;
    public const long MaxHeads = 4096;
    public const long MaxPositions = 1L << 24;
    public const long MaxTokensPerMicroBatch = 1L << 28;
    public const long MaxSyntheticCount = 100_000_000;

    public static void CheckShape(ModelShape shape, string prefix)
    {
        Bound(shape.VocabSize, MaxVocabSize, "vocab_size", prefix);
        Bound(shape.HiddenSize, MaxHiddenSize, "hidden_size", prefix);
        Bound(shape.IntermediateSize, MaxHiddenSize * 8, "intermediate_size", prefix);
        Bound(shape.Layers, MaxLayers, "num_hidden_layers", prefix);
        Bound(shape.Heads, MaxHeads, "num_attention_heads", prefix);
        Bound(shape.KeyValueHeads, MaxHeads, "num_key_value_heads", prefix);
        Bound(shape.MaxPositions, MaxPositions, "max_position_embeddings", prefix);
        if (shape.IntermediateSize <= 0 || shape.MaxPositions <= 0)
            throw new UserErrorException($"{prefix}intermediate_size and max_position_embeddings must be positive; check the model's config.");
    }

    /// <summary>The hf tokenizer's ids must be rows of the embedding.</summary>
    public static void CheckVocabulary(Recipe recipe, ModelShape shape, string tokenizerPath)
    {
        string file = Directory.Exists(tokenizerPath) ? Path.Combine(tokenizerPath, TokenizerLoader.TokenizerFileName) : tokenizerPath;
        if (VocabularyCount(file) is not long count || count <= shape.VocabSize)
            return;
        throw new UserErrorException(
                $"The tokenizer at {tokenizerPath} has {count} tokens but the model's embedding has vocab_size {shape.VocabSize} rows ({shape.Source}), so ids from {shape.VocabSize} on have no embedding; use the model's own tokenizer, or raise vocab_size{(recipe.Model.Config is not null ? " in model.config" : "")}.");
    }

    public static void CheckGeometry(Recipe recipe, RecipeValues v, ModelShape shape)
    {
        long tokens = (long)recipe.Training.BatchSize * recipe.Dataset.SeqLen;
        if (tokens > MaxTokensPerMicroBatch)
            throw new UserErrorException($"training.batch_size {recipe.Training.BatchSize} x dataset.seq_len {recipe.Dataset.SeqLen} = {tokens:N0} tokens per micro-batch is beyond any machine (at most {MaxTokensPerMicroBatch:N0}); lower training.batch_size.");
        // the logits of one micro-batch, fp32: (B, T, V) x 4 bytes, alive with their gradient
        double logitsGb = 2.0 * tokens * shape.VocabSize * 4 / OffloadSection.BytesPerGb;
        if (recipe.Offload.HostGb is double host && recipe.Training.Device == ComputeDevice.Cpu && logitsGb > host)
            throw new UserErrorException(string.Create(CultureInfo.InvariantCulture,
                $"training.batch_size {recipe.Training.BatchSize}{v.Where("training.batch_size")} x dataset.seq_len {recipe.Dataset.SeqLen} needs about {logitsGb:0.##} GiB for the logits and their gradient alone (batch x seq x vocab {shape.VocabSize} x 4 bytes x 2), more than offload.host_gb {host}; lower training.batch_size (raise gradient_accumulation_steps instead)."));
        if (recipe.Dataset.Format == DatasetFormat.Synthetic && recipe.Dataset.SyntheticCount > MaxSyntheticCount)
            throw new UserErrorException($"dataset.synthetic.count {recipe.Dataset.SyntheticCount}{v.Where("dataset.synthetic.count")} would take hours to generate and tokenize; use at most {MaxSyntheticCount:N0}.");
    }

    /// <summary>
    /// 1 + the largest id of tokenizer.json (model.vocab and added_tokens), read without building the tokenizer;
    /// null when the file does not have that shape (loading it at run time then says what is wrong).
    /// </summary>
    private static long? VocabularyCount(string file)
    {
        using System.Text.Json.JsonDocument document = IO.StrictJson.ReadFile(file, IO.InputFile.TokenizerLimitByteCount, "tokenizer.json", "replace it with the model's tokenizer.json");
        System.Text.Json.JsonElement root = document.RootElement;
        long max = -1;
        if (root.ValueKind != System.Text.Json.JsonValueKind.Object)
            return null;
        if (root.TryGetProperty("model", out var model) && model.ValueKind == System.Text.Json.JsonValueKind.Object && model.TryGetProperty("vocab", out var vocab))
        {
            if (vocab.ValueKind == System.Text.Json.JsonValueKind.Object)
                foreach (var entry in vocab.EnumerateObject())
                    if (entry.Value.TryGetInt64(out long id))
                        max = Math.Max(max, id);
            if (vocab.ValueKind == System.Text.Json.JsonValueKind.Array)
                max = Math.Max(max, vocab.GetArrayLength() - 1);
        }
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == System.Text.Json.JsonValueKind.Array)
            foreach (var token in added.EnumerateArray())
                if (token.ValueKind == System.Text.Json.JsonValueKind.Object && token.TryGetProperty("id", out var idElement) && idElement.TryGetInt64(out long id))
                    max = Math.Max(max, id);
        return max < 0 ? null : max + 1;
    }

    private static void Bound(long value, long max, string name, string prefix)
    {
        if (value > max)
            throw new UserErrorException($"{prefix}{name} {value} is implausibly large (at most {max} for any Llama-family model) and would allocate or loop beyond any machine; check the model's config.");
    }
}
