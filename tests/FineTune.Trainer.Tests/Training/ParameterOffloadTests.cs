using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Parameter offload (ParameterTier.Nvme): the weights live in an NVMe file and each stage's are read into a few
/// slots for its turn. The arithmetic is the resident engine's, so every loss, norm and weight must match it bit
/// for bit; the tests also check that the weights really left memory and came back through the file.
/// </summary>
public sealed class ParameterOffloadTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData(false, false, 1)]
    [InlineData(true, true, 1)]   // tied embedding: LM head and embedding share one range and one .grad
    [InlineData(true, false, 3)]  // accumulation: every micro-batch streams the weights again
    public void ParametersOnNvmeChangeNoBit(bool tied, bool clip, int accumulation)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(6 * accumulation, 2);
        (List<StepMetrics> Metrics, float[] Weights) Train(ParameterTier tier)
        {
            using LlamaModel model = Model(tied: tied);
            List<StepMetrics> metrics;
            using (var engine = new TrainingEngine(model, Options() with
            {
                ParameterTier = tier, NvmeDirectory = scratch.Path, OptimizerTier = StateTier.Nvme, NvmeActivationLayers = 2,
                AdamW = new() { LearningRate = 3e-3, MaxGradNorm = clip ? 0.5 : 0 }, AccumulationSteps = accumulation,
            }))
            {
                metrics = batches.Chunk(accumulation).Select(window => engine.Step(window)).ToList();
                engine.Settle(); // with clipping, the last step's update runs under what would be the next forward
                if (tier == ParameterTier.Nvme)
                {
                    Assert.All(model.Parameters, p => Assert.False(p.IsResident));
                    Assert.StartsWith("nvme", engine.WeightLocation);
                    // each micro-batch reads every stage at least once; the write-back writes every weight once per step
                    long weightBytes = model.ParameterCount * 4;
                    Assert.True(engine.WeightCounters.BytesRead >= weightBytes * metrics.Count * accumulation, $"read {engine.WeightCounters.BytesRead}");
                    Assert.True(engine.WeightCounters.BytesWritten >= weightBytes * metrics.Count, $"written {engine.WeightCounters.BytesWritten}");
                    Assert.True(engine.WeightCounters.Hits > 0, "the top stages should still be resident when backward starts");
                    output.WriteLine($"tied={tied} clip={clip} accumulation={accumulation}: {engine.WeightCounters.Reads} stage reads ({engine.WeightCounters.BytesRead:N0} bytes), " +
                        $"{engine.WeightCounters.Hits} hits, {engine.WeightCounters.BytesWritten:N0} bytes written back, read wait {engine.WeightCounters.ReadWaitSeconds * 1e3:0.0} ms");
                }
            }
            return (metrics, Weights(model)); // after Dispose: the model owns its weights again
        }
        var resident = Train(ParameterTier.Device);
        var streamed = Train(ParameterTier.Nvme);
        Assert.Equal(resident.Metrics.Select(m => m.Loss), streamed.Metrics.Select(m => m.Loss));
        Assert.Equal(resident.Metrics.Select(m => m.GradientNorm), streamed.Metrics.Select(m => m.GradientNorm));
        Assert.Equal(resident.Weights, streamed.Weights);
        Assert.True(streamed.Metrics[^1].Loss < streamed.Metrics[0].Loss, "the loss should fall");
        Assert.Empty(Directory.GetFiles(scratch.Path)); // the weight file is deleted with the engine
    }

    [Fact]
    public void Bf16ParametersOnNvmeMatchResidentBf16()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(4, 2);
        (List<double> Losses, float[] Weights) Train(ParameterTier tier)
        {
            using LlamaModel model = Model(DType.BFloat16);
            List<double> losses;
            using (var engine = new TrainingEngine(model, Options() with { Precision = PrecisionMode.BFloat16, ParameterTier = tier, NvmeDirectory = scratch.Path }))
            {
                Assert.Equal(0, engine.Optimizer!.SubGroupElementCount % 2048); // a sub-group of bf16 weights fills whole 4 KiB pages
                losses = Run(engine, batches).Select(m => m.Loss).ToList();
            }
            return (losses, Weights(model));
        }
        var resident = Train(ParameterTier.Device);
        var streamed = Train(ParameterTier.Nvme);
        Assert.Equal(resident.Losses, streamed.Losses);
        Assert.Equal(resident.Weights, streamed.Weights);
    }

    [Fact]
    public void EvaluationAndExportStreamTheWeightsWhileTheEngineHoldsThem()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(3, 2);
        using LlamaModel model = Model(tied: true);
        Batch probe = batches[0];
        float[] logitsDuring;
        string exported = Path.Combine(scratch.Path, "export");
        using (var engine = new TrainingEngine(model, Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path }))
        {
            Run(engine, batches);
            Assert.Throws<InvalidOperationException>(() => model.Parameters[0].Tensor); // not resident, and says so
            Assert.Throws<InvalidOperationException>(() => model.Forward(Ids(probe)));   // autograd through streamed weights is refused
            using (TensorScope.Enter())
            using (FineTune.Torch.Torch.NoGrad())
                logitsDuring = model.Forward(Ids(probe)).Contiguous().ToArray<float>();
            LlamaExporter.Export(model, exported);
            Assert.All(model.Parameters, p => Assert.False(p.IsResident));
            Run(engine, batches.Take(1)); // training goes on after evaluation and export
        }
        using LlamaModel reloaded = LlamaModel.Load(exported, DType.Float32, Device.Cpu);
        using (TensorScope.Enter())
        using (FineTune.Torch.Torch.NoGrad())
            Assert.Equal(logitsDuring, reloaded.Forward(Ids(probe)).Contiguous().ToArray<float>());
    }

    [Fact]
    public void ResumingWithParametersOnNvmeIsBitExact()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(6, 2);
        TrainingOptions options = Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path, OptimizerTier = StateTier.Nvme };
        List<double> straight;
        using (LlamaModel model = Model())
        using (var engine = new TrainingEngine(model, options))
            straight = Run(engine, batches).Select(m => m.Loss).ToList();
        string saved = Path.Combine(scratch.Path, "optimizer");
        Directory.CreateDirectory(saved);
        using (LlamaModel model = Model())
        using (var engine = new TrainingEngine(model, options))
        {
            Run(engine, batches.Take(3));
            engine.SaveOptimizerState(saved);
        }
        using (LlamaModel model = Model(seed: 99)) // other weights: the loaded masters must reach the weight file
        using (var engine = new TrainingEngine(model, options))
        {
            engine.LoadOptimizerState(saved);
            engine.RestoreStepCount(3);
            Assert.Equal(straight.Skip(3), Run(engine, batches.Skip(3)).Select(m => m.Loss));
        }
    }

    [Fact]
    public void Bf16StateSavedWithResidentWeightsResumesWithWeightsOnNvme()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(4, 2);
        TrainingOptions resident = Options() with { Precision = PrecisionMode.BFloat16, NvmeDirectory = scratch.Path, SubGroupElementCount = 5000 };
        TrainingOptions streamed = resident with { ParameterTier = ParameterTier.Nvme };
        List<double> straight;
        using (LlamaModel model = Model(DType.BFloat16))
        using (var engine = new TrainingEngine(model, resident))
            straight = Run(engine, batches).Select(m => m.Loss).ToList();
        string saved = Path.Combine(scratch.Path, "optimizer");
        Directory.CreateDirectory(saved);
        using (LlamaModel model = Model(DType.BFloat16))
        using (var engine = new TrainingEngine(model, resident))
        {
            Assert.Equal(6144, engine.Optimizer!.SubGroupElementCount); // whole pages of bf16 weights whatever the tier
            Run(engine, batches.Take(2));
            engine.SaveOptimizerState(saved);
        }
        using (LlamaModel model = Model(DType.BFloat16, seed: 99))
        using (var engine = new TrainingEngine(model, streamed))
        {
            Assert.Equal(6144, engine.Optimizer!.SubGroupElementCount);
            engine.LoadOptimizerState(saved);
            engine.RestoreStepCount(2);
            Assert.Equal(straight.Skip(2), Run(engine, batches.Skip(2)).Select(m => m.Loss));
        }
    }

    [Fact]
    public void AnOpenWeightHandleBlocksTheNextStepAndDiesWithTheEngine()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(2, 2);
        using LlamaModel model = Model();
        var engine = new TrainingEngine(model, Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path });
        engine.Step(batches[0]);
        NamedParameter first = model.Parameters[0];
        StageWeights handle = model.UseWeights(first);
        Assert.Equal(first.Spec.Shape, handle[first].Shape); // the weights are resident while the handle lives
        Assert.Throws<InvalidOperationException>(() => engine.Step(batches[1])); // it would rewrite the weights the handle holds
        handle.Dispose();
        Assert.Throws<ObjectDisposedException>(() => handle[first]);
        Assert.False(first.IsResident);
        engine.Step(batches[1]);
        StageWeights late = model.UseWeights(first);
        engine.Dispose();
        late.Dispose(); // after the engine: a no-op, the model keeps the tensors the engine gave back
        Assert.All(model.Parameters, p => Assert.True(p.IsResident));
        Assert.Same(StageWeights.Resident, model.UseWeights(first));
    }

    [Fact]
    public void OffloadedParametersLeaveTheHostPoolWithoutTheWeights()
    {
        using var scratch = new ScratchDirectory();
        // 8 layers of C = 64: the decoder layers hold most of the weights, so two slots are a small part of them
        LlamaConfig config = Config() with { LayerCount = 8, HiddenSize = 64, IntermediateSize = 128, HeadDim = 16 };
        long Planned(ParameterTier tier)
        {
            using LlamaModel model = LlamaModel.Create(config, 7, DType.Float32, Device.Cpu);
            using var engine = new TrainingEngine(model, Options() with { ParameterTier = tier, NvmeDirectory = scratch.Path, ParameterSlots = 2 });
            engine.Step(Batches(1, 2)[0]);
            Assert.Equal(engine.PlannedHostByteCount, engine.PoolReservedByteCount);
            return engine.PlannedHostByteCount;
        }
        using LlamaModel shape = LlamaModel.Create(config, 7, DType.Float32, Device.Cpu);
        long weightBytes = shape.ParameterCount * 4;
        long resident = Planned(ParameterTier.Device), streamed = Planned(ParameterTier.Nvme);
        output.WriteLine($"host pool: resident weights {resident:N0} bytes, weights on NVMe {streamed:N0} bytes; the weights are {weightBytes:N0} bytes");
        Assert.True(resident - streamed > weightBytes / 2, $"saved {resident - streamed} of {weightBytes} weight bytes");
    }

    [Fact]
    public void ParameterOffloadIsRefusedWhereItCannotWork()
    {
        using LlamaModel model = Model();
        var noDirectory = Assert.Throws<UserErrorException>(() => new TrainingEngine(model, Options() with { ParameterTier = ParameterTier.Nvme }));
        Assert.Contains("nvme_dir", noDirectory.Message);
        Assert.All(model.Parameters, p => Assert.True(p.IsResident)); // a refused engine leaves the model as it was
        Assert.Throws<ArgumentException>(() => NewTrainer(model, Options() with { ParameterTier = ParameterTier.Nvme }, TrainingMode.InMemory));
        Assert.Throws<UserErrorException>(() => new TrainingEngine(model, Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = "/tmp", ParameterSlots = 1 }));
    }

    private static Tensor Ids(Batch batch) => FineTune.Torch.Torch.FromArray(batch.InputIds, [batch.BatchSize, batch.SequenceLength]);
}
