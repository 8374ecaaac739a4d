using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using Xunit;
using Xunit.Abstractions;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// bf16 weights and states on NVMe store each master as the weight plus a 16-bit residual: the same losses and
/// weights as whole fp32 masters, with 10 bytes of states per parameter read and written per step instead of 12. The
/// weights backward used travel with the gradients to the update (no weight read back), except for the top layers
/// updated under the next forward, which read theirs back: what the plan says.
/// </summary>
public sealed class ResidualMasterTrainingTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, true, false)]
    [InlineData(false, true, true)]
    public void ResidualMastersTrainToTheBitsOfWholeMastersWithFewerStateBytes(bool tied, bool splitUpdate, bool carryHeld)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(8, 2);
        long parameters = FineTune.Trainer.Planning.MemoryPlan.For(Config(tied), DType.BFloat16, Options()).Layout.ElementCount;
        (List<double> Losses, float[] Weights, List<StepMetrics> Metrics, FineTune.Trainer.Planning.MemoryPlan Plan, long WeightReads) Train(bool residual)
        {
            using LlamaModel model = Model(DType.BFloat16, tied);
            using var engine = new TrainingEngine(model, Options() with
            {
                Precision = PrecisionMode.BFloat16, ParameterTier = ParameterTier.Nvme,
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path, SubGroupElementCount = 3000,
                UpdateUnderForwardElementCount = splitUpdate ? parameters * 2 / 5 : 0,
                ResidualMasters = residual, CarryHeldWeights = carryHeld,
            });
            Assert.Equal(residual ? StateEncoding.Bf16Residual : StateEncoding.Float32Master, engine.Plan.MasterEncoding);
            Assert.Equal(residual, engine.Plan.CarriesWeights);
            Assert.Equal(residual && carryHeld, engine.Plan.CarriesHeldWeights);
            Assert.Equal(splitUpdate, engine.Plan.SplitElement is not null);
            List<StepMetrics> metrics = Run(engine, batches);
            engine.Settle();
            // the gradients' bound counts the weights they carry
            Assert.InRange(engine.PeakConsumedGradientByteCount, 1, engine.Plan.ConsumedGradientBoundByteCount + engine.Plan.HeldByteCount);
            return (metrics.Select(m => m.Loss).ToList(), Weights(model), metrics, engine.Plan, engine.WeightCounters.BytesRead);
        }
        var whole = Train(false);
        var residual = Train(true);
        Assert.Equal(whole.Losses, residual.Losses);
        Assert.Equal(whole.Weights, residual.Weights);
        Assert.True(residual.Losses[^1] < residual.Losses[0], "the model should learn");

        long wholeStates = whole.Plan.TrafficPerStep(1).StateReadBytes, residualStates = residual.Plan.TrafficPerStep(1).StateReadBytes;
        output.WriteLine($"states per step: {wholeStates} -> {residualStates} bytes for {parameters} parameters; weights read per step " +
            $"{whole.Metrics[^1].Traffic.WeightReadBytes} -> {residual.Metrics[^1].Traffic.WeightReadBytes}, the update's read-back planned {residual.Plan.UpdateWeightReadByteCount}");
        Assert.InRange(residualStates, 10 * parameters, 10 * parameters + 4096 * residual.Plan.StateSubGroups.Count);
        Assert.InRange(wholeStates, 12 * parameters, 12 * parameters + 4096 * whole.Plan.StateSubGroups.Count);
        // a pass under the next forward is counted in the step it runs in: per step only without one
        foreach (StepMetrics m in splitUpdate ? [] : residual.Metrics.Skip(1))
        {
            Assert.Equal(residualStates, m.Traffic.StateReadBytes);
            Assert.Equal(residualStates, m.Traffic.StateWriteBytes);
        }
        // 7 steps' worth give or take the pass (and its read-ahead) that straddles a step's edge; whole masters would read 8.4
        Assert.InRange(residual.Metrics.Skip(1).Sum(m => m.Traffic.StateReadBytes), (batches.Count - 2) * residualStates, batches.Count * residualStates);
        // without a pass under the next forward (or with held gradients carrying their weights) every weight reaches the
        // update with its gradient: nothing is read back; else that pass reads back what the plan says, once a step (the
        // last step's pass ran in Settle)
        Assert.Equal(splitUpdate && !carryHeld, residual.Plan.UpdateWeightReadByteCount > 0);
        Assert.Equal(batches.Count * residual.Plan.UpdateWeightReadByteCount, residual.WeightReads - whole.WeightReads);
    }

    [Theory]
    [InlineData(StateTier.Host)]
    [InlineData(StateTier.Nvme)]
    public void ResidualMastersResumeIntoWholeMastersWithTheSavedModelsWeights(StateTier resumedStates)
    {
        // saved with residual masters (bf16, states on NVMe); resumed with whole ones (states in host memory, or residual
        // masters turned off): the model loaded from the checkpoint's weights completes each master, bit for bit
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(6, 2);
        TrainingOptions residual = Options() with
        {
            Precision = PrecisionMode.BFloat16, ParameterTier = ParameterTier.Nvme, OptimizerTier = StateTier.Nvme,
            NvmeDirectory = scratch.Path, SubGroupElementCount = 3000,
        };
        TrainingOptions whole = residual with { OptimizerTier = resumedStates, ResidualMasters = false };
        List<double> straight;
        using (LlamaModel model = Model(DType.BFloat16))
        using (var engine = new TrainingEngine(model, residual))
            straight = Run(engine, batches).Select(m => m.Loss).ToList();
        string saved = Path.Combine(scratch.Path, "optimizer"), exported = Path.Combine(scratch.Path, "model");
        Directory.CreateDirectory(saved);
        using (LlamaModel model = Model(DType.BFloat16))
        using (var engine = new TrainingEngine(model, residual))
        {
            Run(engine, batches.Take(3));
            engine.SaveOptimizerState(saved);
            LlamaExporter.Export(model, exported);
        }
        Assert.Contains($"\"{StateEncoding.Bf16Residual.ManifestName()}\"", File.ReadAllText(Path.Combine(saved, OptimizerStateFile.ManifestFileName)));
        using (LlamaModel model = LlamaModel.Load(exported, DType.BFloat16, Device.Cpu))
        using (var engine = new TrainingEngine(model, whole))
        {
            Assert.Equal(StateEncoding.Float32Master, engine.Plan.MasterEncoding);
            engine.LoadOptimizerState(saved);
            engine.RestoreStepCount(3);
            Assert.Equal(straight.Skip(3), Run(engine, batches.Skip(3)).Select(m => m.Loss));
        }
    }
}
