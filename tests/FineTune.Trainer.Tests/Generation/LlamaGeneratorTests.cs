using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Generation;
using FineTune.Trainer.Models;
using FineTune.Trainer.Tests.Training;
using FineTune.Trainer.Tokenizers;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;
using Xunit;

namespace FineTune.Trainer.Tests.Generation;

/// <summary>
/// Incremental decoding with the KV cache against the whole-sequence forward (model.Forward every step), token for
/// token, on a tiny model trained here and on the reference fixtures (GQA with tied embeddings; q/k/v biases with
/// llama3 RoPE scaling; Qwen2); greedy decoding of a model that learned one text gives that text back; sampling
/// with a seed is reproducible through the model; stop sequences end generation and are not returned.
/// </summary>
public sealed class LlamaGeneratorTests
{
    private const string Memorized = "the quick brown fox jumps over the lazy dog";

    private static readonly Lazy<LlamaModel> s_trained = new(TrainOnOneText);

    /// <summary>A tiny model trained (in memory, 150 AdamW steps) until it knows <see cref="Memorized"/> by heart.</summary>
    private static LlamaModel TrainOnOneText()
    {
        var tokenizer = new ByteTokenizer();
        int[] ids = tokenizer.Encode(Memorized, addSpecialTokens: true);
        int t = ids.Length - 1;
        long[] inputs = [.. ids[..^1].Select(i => (long)i), .. ids[..^1].Select(i => (long)i)];
        long[] labels = [.. ids[1..].Select(i => (long)i), .. ids[1..].Select(i => (long)i)];
        var batch = new Batch(2, t, inputs, labels, new DataPosition(0, 0, 0, 1, 0));
        LlamaModel model = TinyTraining.Model();
        using (ITrainer engine = TinyTraining.NewTrainer(model, TinyTraining.Options() with { SequenceLength = t, AdamW = new() { LearningRate = 1e-2 } }, TrainingMode.InMemory))
        {
            for (int step = 0; step < 150; step++)
                engine.Step(batch);
        }
        return model;
    }

    [Fact]
    public void GreedyDecodingOfATrainedModelGivesBackWhatItLearned()
    {
        var tokenizer = new ByteTokenizer();
        using var generator = new LlamaGenerator(s_trained.Value);
        var (tokens, _) = generator.Generate(tokenizer.Encode("the quick", addSpecialTokens: true), new GenerationOptions { MaxNewTokenCount = Memorized.Length - 9 });
        Assert.Equal(Memorized[9..], tokenizer.Decode(tokens.ToArray()));
    }

    [Theory]
    [InlineData("the quick")]
    [InlineData("over the")]
    [InlineData("zebra")]
    public void KvCacheEqualsTheFullForwardTokenForToken(string prompt)
    {
        var tokenizer = new ByteTokenizer();
        AssertCacheMatchesFullForward(s_trained.Value, tokenizer.Encode(prompt, addSpecialTokens: true), 40);
    }

    [Theory]
    [InlineData("llama_gqa_tied")]
    [InlineData("llama_bias_llama3")]
    [InlineData("qwen2_tiny")]
    public void KvCacheEqualsTheFullForwardOnReferenceModels(string fixture)
    {
        string folder = Path.Combine(Path.GetDirectoryName(Tokenizers.FixturePaths.Data("x"))!, "..", "models", fixture);
        using LlamaModel model = LlamaModel.Load(folder, DType.Float32, Device.Cpu);
        int[] prompt = [1, 17, 5, 42, 9, 3];
        AssertCacheMatchesFullForward(model, prompt, Math.Min(30, model.Config.MaxPositionEmbeddings - prompt.Length));
    }

    [Fact]
    public void SamplingWithASeedIsReproducibleThroughTheModel()
    {
        int[] prompt = new ByteTokenizer().Encode("the", addSpecialTokens: true);
        using var generator = new LlamaGenerator(s_trained.Value);
        List<int> Sample(ulong seed) => generator.Generate(prompt, new GenerationOptions
        {
            MaxNewTokenCount = 30, Sampling = new SamplingOptions(Temperature: 1.5, TopK: 20, Seed: seed),
        }).Tokens;
        Assert.Equal(Sample(5), Sample(5));
        Assert.NotEqual(Sample(5), Sample(6));
    }

    [Fact]
    public void AStopSequenceEndsGenerationAndIsNotReturned()
    {
        var tokenizer = new ByteTokenizer();
        using var generator = new LlamaGenerator(s_trained.Value);
        var streamed = new List<int>();
        var (tokens, stopped) = generator.Generate(tokenizer.Encode("the quick", addSpecialTokens: true), new GenerationOptions
        {
            MaxNewTokenCount = 40, StopSequences = [tokenizer.Encode(" fox")],
        }, streamed.Add);
        Assert.True(stopped);
        Assert.Equal(" brown", tokenizer.Decode(tokens.ToArray()));
        Assert.Equal(tokens, streamed);
    }

    private static void AssertCacheMatchesFullForward(LlamaModel model, int[] prompt, int count)
    {
        using var generator = new LlamaGenerator(model);
        var options = new GenerationOptions { MaxNewTokenCount = count };
        List<int> cached = generator.Generate(prompt, options).Tokens;
        List<int> full = generator.Generate(prompt, options with { UseKvCache = false }).Tokens;
        Assert.Equal(count, cached.Count);
        Assert.Equal(full, cached);
    }
}
