using FineTune.Torch;
using FineTune.Trainer.Models;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Trainer.Tests.Models;

/// <summary>`finetune eval`'s windowed mean cross-entropy against the reference script's number.</summary>
public sealed class LlamaEvaluatorTests
{
    private readonly ITestOutputHelper _output;

    public LlamaEvaluatorTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void WindowedMeanCrossEntropyMatchesReference(string fixture)
    {
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.Float32, Device.Cpu);
        int[] tokens = reference.InputIds[reference.EvalRow].Select(id => (int)id).ToArray();

        EvaluationResult result = LlamaEvaluator.Evaluate(model, tokens, reference.EvalSequenceLength);
        double error = Math.Abs(result.MeanCrossEntropy / reference.EvalMeanCrossEntropy - 1);
        _output.WriteLine($"{fixture}: mean CE {result.MeanCrossEntropy:F8} vs {reference.EvalMeanCrossEntropy:F8} (rel {error:E2}), ppl {result.Perplexity:F4}");
        Assert.Equal(reference.EvalPredictionCount, result.PredictionCount);
        Assert.Equal(3, result.WindowCount);    // 16 tokens in windows of 6 inputs: 6 + 6 + 3 predictions
        Assert.True(error < 1e-5, $"rel error {error:E2}");
        Assert.Equal(Math.Exp(result.MeanCrossEntropy), result.Perplexity);
    }

    [Fact]
    public void RefusesTooFewTokensAndIdsOutsideTheVocabulary()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), DType.Float32, Device.Cpu);
        Assert.Contains("at least 2 tokens", Assert.Throws<UserErrorException>(() => LlamaEvaluator.Evaluate(model, [5], 8)).Message);
        Assert.Contains("id 128", Assert.Throws<UserErrorException>(() => LlamaEvaluator.Evaluate(model, [5, 128], 8)).Message);
        Assert.Contains("max_position_embeddings", Assert.Throws<UserErrorException>(() => LlamaEvaluator.Evaluate(model, Enumerable.Range(0, 100).ToArray(), 65)).Message);
    }
}
