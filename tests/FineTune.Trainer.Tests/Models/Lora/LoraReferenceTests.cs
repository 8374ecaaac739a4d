using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// FineTune's LoRA against tests/reference/make_lora_fixtures.py (PEFT's LoRA Linear in plain torch, float64):
/// a PEFT adapter folder the script wrote is loaded over its base fixture, and the logits, the loss, every adapter
/// (and modules_to_save) gradient, and five AdamW steps over the adapters only must match, in float32 on the CPU.
/// One fixture has no dropout and the default targets on a GQA, tied-embedding base; the other has dropout 0.25,
/// all-linear targets, trained norms and a base with biases, untied head and llama3 RoPE, so its losses also check
/// that the dropout masks are the documented function of (seed, step, micro-batch, layer, projection).
/// Tolerance 1e-5 relative (max |a - b| / max |b| per tensor): the script measures the float32 noise floor of the
/// same computation at 1e-8 (loss) and 2e-6 (gradients).
/// </summary>
public sealed class LoraReferenceTests
{
    private const double Tolerance = 1e-5;
    private readonly ITestOutputHelper _output;

    public LoraReferenceTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(LoraReferenceData.GqaTied)]
    [InlineData(LoraReferenceData.BiasAllLinear)]
    public void PeftFolderFromTheReferenceGivesItsLogits(string fixture)
    {
        var reference = LoraReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model);
        adapters.AttachTo(model);
        using var noGrad = FineTune.Torch.Torch.NoGrad();

        Tensor logits = model.Forward(reference.IdsTensor());
        double error = ReferenceData.MaxRelativeError(logits.ToArray<float>(), reference.Logits());
        double loss = CausalLmLoss.FromLabels(logits, reference.LabelsTensor()).Item<float>();
        _output.WriteLine($"{fixture}: logits max rel error {error:E2}; eval loss {loss:F7} vs {reference.EvalLoss:F7}");
        Assert.True(error < Tolerance, $"logits: {error:E2}");
        Assert.True(Math.Abs(loss / reference.EvalLoss - 1) < Tolerance, $"eval loss {loss} vs {reference.EvalLoss}");
    }

    [Theory]
    [InlineData(LoraReferenceData.GqaTied)]
    [InlineData(LoraReferenceData.BiasAllLinear)]
    public void LossAndEveryAdapterGradientMatchTheReferenceWithTheBaseFrozen(string fixture)
    {
        var reference = LoraReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        model.SetRequiresGrad(false);
        using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model, reference.DropoutSeed);
        adapters.AttachTo(model);
        LoraTrainingLoop.TrainedTensors(model, adapters);

        double loss = LoraTrainingLoop.ForwardBackward(model, adapters, reference.IdsTensor(), reference.LabelsTensor(), step: 0);
        _output.WriteLine($"{fixture}: training loss {loss:F8} vs {reference.Loss:F8}");
        Assert.True(Math.Abs(loss / reference.Loss - 1) < Tolerance, $"loss {loss} vs {reference.Loss}");

        var trained = adapters.Parameters.Concat(model.Parameters.Where(p => adapters.TrainableBaseParameterNames.Contains(p.Name))).ToArray();
        double worst = 0;
        foreach (NamedParameter p in trained)
        {
            using Tensor grad = p.Tensor.Grad ?? throw new Xunit.Sdk.XunitException($"{p.Name} has no gradient");
            double e = ReferenceData.MaxRelativeError(grad.ToArray<float>(), reference.Grad(p.Name));
            worst = Math.Max(worst, e);
            Assert.True(e < Tolerance, $"{p.Name}: grad max rel error {e:E2}");
        }
        _output.WriteLine($"{fixture}: {trained.Length} gradients, max rel error {worst:E2}");
        foreach (NamedParameter p in model.Parameters.Where(p => !adapters.TrainableBaseParameterNames.Contains(p.Name)))
        {
            Assert.False(p.Tensor.RequiresGrad, p.Name);
            Assert.Null(p.Tensor.Grad);
        }
    }

    [Theory]
    [InlineData(LoraReferenceData.GqaTied)]
    [InlineData(LoraReferenceData.BiasAllLinear)]
    public void FiveAdamWStepsOverTheAdaptersFollowTheReferenceAndLeaveTheBaseUntouched(string fixture)
    {
        var reference = LoraReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        model.SetRequiresGrad(false);
        using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model, reference.DropoutSeed);
        adapters.AttachTo(model);
        var frozen = model.Parameters.Where(p => !adapters.TrainableBaseParameterNames.Contains(p.Name))
            .Select(p => (p.Name, p.Tensor, Before: p.Tensor.Clone())).ToArray();
        using var optimizer = new TorchAdamW(LoraTrainingLoop.TrainedTensors(model, adapters),
            learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01);
        Tensor ids = reference.IdsTensor(), labels = reference.LabelsTensor();

        var losses = new List<double>();
        for (int step = 0; step < 5; step++)
        {
            optimizer.ZeroGrad();
            losses.Add(LoraTrainingLoop.ForwardBackward(model, adapters, ids, labels, step));
            optimizer.Step();
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
        foreach (var (name, tensor, before) in frozen)
            Assert.True(tensor.ValueEquals(before), $"{name} changed although the base is frozen");
    }

    [Theory]
    [InlineData(LoraReferenceData.GqaTied)]
    [InlineData(LoraReferenceData.BiasAllLinear)]
    public void Bf16BaseWithFloat32AdaptersStaysWithinBf16PrecisionOfTheReference(string fixture)
    {
        // As LlamaReferenceTests' bf16 check: 8 significant bits, a few percent on the logits after two layers.
        var reference = LoraReferenceData.For(fixture);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.BaseFolder, DType.BFloat16, Device.Cpu);
        using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model);
        adapters.AttachTo(model);
        Assert.All(adapters.Parameters, p => Assert.Equal(DType.Float32, p.Tensor.DType));
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        Tensor logits = model.Forward(reference.IdsTensor());
        Assert.Equal(DType.BFloat16, logits.DType);
        double error = ReferenceData.MaxRelativeError(logits.To(DType.Float32).ToArray<float>(), reference.Logits());
        double loss = CausalLmLoss.FromLabels(logits, reference.LabelsTensor()).Item<float>();
        _output.WriteLine($"{fixture} bf16 base: logits max rel error {error:E2}, eval loss {loss:F5} vs {reference.EvalLoss:F5}");
        Assert.True(error < 5e-2, $"bf16 logits: {error:E2}");
        Assert.True(Math.Abs(loss / reference.EvalLoss - 1) < 1e-2, $"bf16 loss {loss} vs {reference.EvalLoss}");
    }
}
