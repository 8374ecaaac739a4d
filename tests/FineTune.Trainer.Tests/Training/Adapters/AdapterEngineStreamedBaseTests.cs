using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Tests.Models.Lora;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;
using Xunit;

namespace FineTune.Trainer.Tests.Training.Adapters;

/// <summary>
/// LoRA over a base streamed from NVMe through two layer slots trains exactly as over a resident base: 20 steps
/// through <see cref="AdapterEngine"/> give bit-identical losses, gradient norms, adapters and trained extras. Two
/// cases: the fp32 reference fixture (dropout 0.25, all-linear, trained norms, biases) read from its folder, two
/// micro-batches per step with clipping; and a bf16 base generated tensor by tensor straight into the NVMe store
/// (<see cref="BaseWeights.Generated"/>) against the same seed's LlamaModel.Create held on the host, so the streamed
/// creation path is the model the seed gives. The streamed run really reads the base every step; the resident one
/// reads nothing.
/// </summary>
public sealed class AdapterEngineStreamedBaseTests
{
    private const int Steps = 20;

    [Fact]
    public void TwentyStepsOverTheFixtureBaseOnNvmeEqualTwentyOverItOnTheHostBitForBit()
    {
        var reference = LoraReferenceData.For(LoraReferenceData.BiasAllLinear);
        Batch whole = AdapterTraining.FixtureBatch(reference);
        Batch[] window = [TinyTraining.Rows(whole, 0, 1), TinyTraining.Rows(whole, 1, 1)];
        Run Train(bool onNvme)
        {
            using var scratch = new TinyTraining.ScratchDirectory();
            using var scope = TensorScope.Enter();
            using LlamaModel model = onNvme
                ? LlamaModel.Open(reference.BaseFolder, DType.Float32, Device.Cpu)
                : LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
            using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model, reference.DropoutSeed);
            TrainingOptions options = AdapterTraining.ReferenceOptions(1, whole.SequenceLength) with
            {
                AdamW = new() { LearningRate = 1e-2, WeightDecay = 0.01, MaxGradNorm = 0.5 },
                ParameterTier = onNvme ? ParameterTier.Nvme : ParameterTier.Device,
                ParameterSlots = 2,
                NvmeDirectory = scratch.Path,
            };
            using var engine = new AdapterEngine(model, adapters, options, onNvme ? BaseWeights.FromFolder(reference.BaseFolder) : null);
            return Run.Of(engine, model, adapters, Enumerable.Repeat(window, Steps));
        }
        Run host = Train(onNvme: false), nvme = Train(onNvme: true);
        host.AssertSameAs(nvme);
        Assert.True(host.Losses[^1] < host.Losses[0] - 0.5, $"the adapters did not learn: {host.Losses[0]} -> {host.Losses[^1]}");
        Assert.Equal(0, host.BaseBytesRead);
        Assert.True(nvme.BaseBytesRead >= Steps * 2L * 2 * 4 * 32 * 32, $"the NVMe base was read {nvme.BaseBytesRead} bytes in {Steps} steps"); // at least q_proj of both layers, twice per micro-batch
    }

    [Fact]
    public void TwentyStepsOverABf16BaseGeneratedOntoNvmeEqualTwentyOverTheSameSeedsModelOnTheHostBitForBit()
    {
        var lora = new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = [LoraTargets.AllLinear], Trainable = [LoraTrainableModules.FinalNorm, LoraTrainableModules.InputNorm] };
        List<Batch> batches = TinyTraining.Batches(Steps * 2, batchSize: 2);
        Run Train(bool onNvme)
        {
            using var scratch = new TinyTraining.ScratchDirectory();
            using var scope = TensorScope.Enter();
            using LlamaModel model = onNvme
                ? LlamaModel.CreateStreamed(TinyTraining.Config(), 7, DType.BFloat16, Device.Cpu)
                : TinyTraining.Model(DType.BFloat16, seed: 7);
            using LoraAdapters adapters = LoraAdapters.Create(model, lora, seed: 5);
            TrainingOptions options = TinyTraining.Options() with
            {
                Precision = PrecisionMode.BFloat16,
                AdamW = new() { LearningRate = 1e-2, MaxGradNorm = 1.0 },
                ParameterTier = onNvme ? ParameterTier.Nvme : ParameterTier.Device,
                ParameterSlots = 2,
                NvmeActivationLayers = onNvme ? -1 : 0,
                NvmeDirectory = scratch.Path,
            };
            using var engine = new AdapterEngine(model, adapters, options, onNvme ? BaseWeights.Generated(7) : null);
            return Run.Of(engine, model, adapters, batches.Chunk(2));
        }
        Run host = Train(onNvme: false), nvme = Train(onNvme: true);
        host.AssertSameAs(nvme);
        Assert.True(host.Losses.Skip(15).Average() < host.Losses.Take(5).Average() - 0.1, $"the adapters did not learn: {string.Join(", ", host.Losses.Select(l => l.ToString("0.000")))}");
        Assert.Equal(0, host.BaseBytesRead);
        Assert.True(nvme.BaseBytesRead > 0);
    }

    /// <summary>What one training run gave: per-step losses and norms, the trained values at the end, base bytes read.</summary>
    private sealed record Run(List<double> Losses, List<double> Norms, List<float[]> Trained, long BaseBytesRead)
    {
        public static Run Of(AdapterEngine engine, LlamaModel model, LoraAdapters adapters, IEnumerable<Batch[]> windows)
        {
            var losses = new List<double>();
            var norms = new List<double>();
            foreach (Batch[] window in windows)
            {
                StepMetrics m = engine.Step(window);
                losses.Add(m.Loss);
                norms.Add(m.GradientNorm);
            }
            return new Run(losses, norms, AdapterTraining.TrainedValues(model, adapters), engine.BaseCounters.Snapshot().BytesRead);
        }

        public void AssertSameAs(Run other)
        {
            Assert.Equal(Steps, Losses.Count);
            Assert.Equal(Losses.Select(BitConverter.DoubleToInt64Bits), other.Losses.Select(BitConverter.DoubleToInt64Bits));
            Assert.Equal(Norms.Select(BitConverter.DoubleToInt64Bits), other.Norms.Select(BitConverter.DoubleToInt64Bits));
            Assert.Equal(Trained.Count, other.Trained.Count);
            for (int i = 0; i < Trained.Count; i++)
                Assert.Equal(Trained[i], other.Trained[i]);
        }
    }
}
