using FineTune.Torch;
using FineTune.Trainer.Models;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Trainer.Tests.Models;

/// <summary>
/// FineTune's Llama against tests/reference/make_llama_fixtures.py (plain-torch transformers modeling_llama in
/// float64): logits, loss, every gradient (whole graph and layer by layer) and five AdamW steps, in float32 on
/// the CPU. Errors are max |a - b| / max |b| per tensor and are printed.
/// </summary>
public sealed class LlamaReferenceTests
{
    private const double Tolerance = 1e-5;
    private readonly ITestOutputHelper _output;

    public LlamaReferenceTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void LogitsAndHiddenStatesMatchReference(string fixture)
    {
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.Float32, Device.Cpu);
        using var noGrad = FineTune.Torch.Torch.NoGrad();

        Tensor x = reference.IdsTensor();
        string[] stageNames = ["embed", .. Enumerable.Range(0, model.Config.LayerCount).Select(i => $"layer.{i}"), "norm"];
        for (int s = 0; s < stageNames.Length; s++)
        {
            x = model.Stages[s].Forward(x);
            double stageError = ReferenceData.MaxRelativeError(x.ToArray<float>(), reference.Hidden(stageNames[s]));
            _output.WriteLine($"{fixture} {stageNames[s]}: max rel error {stageError:E2}");
            Assert.True(stageError < Tolerance, $"{stageNames[s]}: {stageError:E2}");
        }
        Tensor logits = model.Forward(reference.IdsTensor());
        double error = ReferenceData.MaxRelativeError(logits.ToArray<float>(), reference.Logits());
        _output.WriteLine($"{fixture} logits: max rel error {error:E2}");
        Assert.True(error < Tolerance, $"logits: {error:E2}");
    }

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void LossAndWholeGraphGradientsMatchReference(string fixture)
    {
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.Float32, Device.Cpu);
        model.SetRequiresGrad(true);

        Tensor loss = model.Loss(reference.IdsTensor(), reference.LabelsTensor());
        double lossValue = loss.Item<float>();
        _output.WriteLine($"{fixture} loss {lossValue:F8} vs {reference.Loss:F8}: rel error {Math.Abs(lossValue / reference.Loss - 1):E2}");
        Assert.True(Math.Abs(lossValue / reference.Loss - 1) < Tolerance);

        loss.Backward();
        double worst = AssertGradsMatch(model, reference, fixture + " whole-graph");
        _output.WriteLine($"{fixture} whole-graph grads: max rel error {worst:E2} over {model.Parameters.Count} tensors");
    }

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void LayerByLayerBackwardEqualsWholeGraphBackward(string fixture)
    {
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.Float32, Device.Cpu);
        model.SetRequiresGrad(true);

        model.Loss(reference.IdsTensor(), reference.LabelsTensor()).Backward();
        Dictionary<string, float[]> wholeGraph = model.Parameters.ToDictionary(p => p.Name, p => p.Tensor.Grad!.ToArray<float>());
        model.ClearGrads();

        // Forward without a graph, keeping each stage's input; then backward stage by stage from the top.
        var inputs = new List<Tensor>();
        Tensor x = reference.IdsTensor();
        using (FineTune.Torch.Torch.NoGrad())
        {
            foreach (IModelLayer stage in model.Stages)
            {
                inputs.Add(x);
                x = stage.Forward(x);
            }
        }
        Tensor targets = CausalLmLoss.ShiftLabels(reference.LabelsTensor());
        var (loss, grad) = CausalLmLoss.ForwardBackward(x, targets);
        Assert.True(Math.Abs(loss.Item<float>() / reference.Loss - 1) < Tolerance);
        Tensor? upstream = grad;
        for (int s = model.Stages.Count - 1; s >= 0; s--)
            upstream = model.Stages[s].Backward(inputs[s], upstream!);
        Assert.Null(upstream);   // the embedding's input (token ids) has no gradient

        double worstVsWhole = 0;
        foreach (NamedParameter p in model.Parameters)
        {
            double e = ReferenceData.MaxRelativeError(p.Tensor.Grad!.ToArray<float>(), wholeGraph[p.Name]);
            worstVsWhole = Math.Max(worstVsWhole, e);
        }
        _output.WriteLine($"{fixture} layer-by-layer vs whole-graph grads: max rel difference {worstVsWhole:E2}");
        Assert.True(worstVsWhole < 1e-6, $"layer-by-layer differs from whole-graph by {worstVsWhole:E2}");
        double worst = AssertGradsMatch(model, reference, fixture + " layer-by-layer");
        _output.WriteLine($"{fixture} layer-by-layer grads vs reference: max rel error {worst:E2}");
    }

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void FiveAdamWStepsFollowTheReferenceLosses(string fixture)
    {
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.Float32, Device.Cpu);
        model.SetRequiresGrad(true);
        using var optimizer = new TorchAdamW(model.Parameters.Select(p => p.Tensor).ToArray(),
            learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01);
        Tensor ids = reference.IdsTensor(), labels = reference.LabelsTensor();

        var losses = new List<double>();
        for (int step = 0; step < 5; step++)
        {
            using (TensorScope.Enter())
            {
                model.ClearGrads();
                Tensor loss = model.Loss(ids, labels);
                losses.Add(loss.Item<float>());
                loss.Backward();
                optimizer.Step();
            }
        }
        using (TensorScope.Enter())
        using (FineTune.Torch.Torch.NoGrad())
            losses.Add(model.Loss(ids, labels).Item<float>());

        double worst = 0;
        for (int k = 0; k < losses.Count; k++)
        {
            double e = Math.Abs(losses[k] / reference.AdamWLosses[k] - 1);
            worst = Math.Max(worst, e);
            _output.WriteLine($"{fixture} AdamW loss[{k}] {losses[k]:F7} vs {reference.AdamWLosses[k]:F7} (rel {e:E2})");
        }
        Assert.True(worst < Tolerance, $"AdamW losses differ by up to {worst:E2}");
    }

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void Bf16ForwardStaysWithinBf16PrecisionOfTheReference(string fixture)
    {
        // bf16 keeps 8 significant bits (relative rounding 2^-9 = 2e-3 per op); through two layers the logits land
        // within a few percent of the float64 answer, and the float32 loss computed from them within 1%.
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.BFloat16, Device.Cpu);
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        Tensor logits = model.Forward(reference.IdsTensor());
        Assert.Equal(DType.BFloat16, logits.DType);
        double error = ReferenceData.MaxRelativeError(logits.To(DType.Float32).ToArray<float>(), reference.Logits());
        double loss = CausalLmLoss.FromLabels(logits, reference.LabelsTensor()).Item<float>();
        _output.WriteLine($"{fixture} bf16: logits max rel error {error:E2}, loss {loss:F5} vs {reference.Loss:F5}");
        Assert.True(error < 5e-2, $"bf16 logits: {error:E2}");
        Assert.True(Math.Abs(loss / reference.Loss - 1) < 1e-2, $"bf16 loss {loss} vs {reference.Loss}");
    }

    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void Bf16GradientsStayWithinBf16PrecisionOfTheReference(string fixture)
    {
        // The backward pass in bf16 on libtorch's CPU kernels (every op of training.precision: bf16 on CPU, the loss
        // in float32): each gradient within bf16 precision of the float64 reference, as ||g - ref|| / ||ref||. Errors
        // grow through the layers and the backward doubles the op count, so the bound is looser than the forward's.
        var reference = ReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.Folder, DType.BFloat16, Device.Cpu);
        model.SetRequiresGrad(true);
        Tensor loss = model.Loss(reference.IdsTensor(), reference.LabelsTensor());
        Assert.Equal(DType.Float32, loss.DType);
        loss.Backward();
        double worst = 0;
        string worstName = "";
        foreach (NamedParameter p in model.Parameters)
        {
            using Tensor grad = p.Tensor.Grad ?? throw new Xunit.Sdk.XunitException($"{p.Name} has no gradient");
            Assert.Equal(DType.BFloat16, grad.DType);
            double e = NormRelativeError(grad.To(DType.Float32).ToArray<float>(), reference.Grad(p.Name));
            if (e > worst)
                (worst, worstName) = (e, p.Name);
        }
        _output.WriteLine($"{fixture} bf16 loss {loss.Item<float>():F5} vs {reference.Loss:F5}; gradients: worst ||g - ref|| / ||ref|| {worst:E2} ({worstName}) over {model.Parameters.Count} tensors");
        Assert.True(Math.Abs(loss.Item<float>() / reference.Loss - 1) < 1e-2);
        Assert.True(worst < 5e-2, $"bf16 gradient of {worstName}: {worst:E2}");
    }

    private static double NormRelativeError(float[] actual, float[] expected)
    {
        double difference = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            difference += ((double)actual[i] - expected[i]) * ((double)actual[i] - expected[i]);
            norm += (double)expected[i] * expected[i];
        }
        return double.IsNaN(difference) ? double.PositiveInfinity : Math.Sqrt(difference / Math.Max(norm, 1e-300));
    }

    [Fact]
    public void ShardedCheckpointLoadsTheSameTensorsAsTheSingleFile()
    {
        using var scope = TensorScope.Enter();
        using var single = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.BiasLlama3), DType.Float32, Device.Cpu);
        using var sharded = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.BiasLlama3Sharded), DType.Float32, Device.Cpu);
        Assert.Equal(single.Parameters.Select(p => p.Name), sharded.Parameters.Select(p => p.Name));
        foreach (var (a, b) in single.Parameters.Zip(sharded.Parameters))
            Assert.True(a.Tensor.ValueEquals(b.Tensor), a.Name);
    }

    private double AssertGradsMatch(LlamaModel model, ReferenceData reference, string what)
    {
        Assert.Equal(reference.GradNames().Order(StringComparer.Ordinal), model.Parameters.Select(p => p.Name).Order(StringComparer.Ordinal));
        double worst = 0;
        foreach (NamedParameter p in model.Parameters)
        {
            using Tensor grad = p.Tensor.Grad ?? throw new Xunit.Sdk.XunitException($"{p.Name} has no gradient");
            double e = ReferenceData.MaxRelativeError(grad.ToArray<float>(), reference.Grad(p.Name));
            worst = Math.Max(worst, e);
            Assert.True(e < Tolerance, $"{what}: {p.Name} grad max rel error {e:E2}");
        }
        return worst;
    }
}
