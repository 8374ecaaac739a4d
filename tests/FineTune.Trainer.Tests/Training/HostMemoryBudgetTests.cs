using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// 200 offloaded steps (states and activations on NVMe) under a host budget equal to the plan: the pools never
/// reserve more than the plan, never grow after step 1, the peak in use is reached in step 1, and the process's
/// resident set does not creep (no per-step leak of tensors or buffers).
/// </summary>
public sealed class HostMemoryBudgetTests
{
    [Fact]
    public void PoolsStayUnderTheBudgetAndDoNotGrowThrough200Steps()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(20, 2);
        using LlamaModel model = Model();
        TrainingOptions options = Options() with
        {
            OptimizerTier = StateTier.Nvme, NvmeActivationLayers = 2, NvmeDirectory = scratch.Path, SubGroupElementCount = 4096,
        };
        long planned;
        using (LlamaModel probeModel = Model())
        using (var probe = new TrainingEngine(probeModel, options))
            planned = probe.PlannedHostByteCount;
        // One byte less than the plan is refused before anything is allocated.
        using (LlamaModel refusedModel = Model())
            Assert.Throws<FineTune.UserErrorException>(() => new TrainingEngine(refusedModel, options with { HostBudgetByteCount = planned - 1 }));

        using var engine = new TrainingEngine(model, options with { HostBudgetByteCount = planned });
        StepMetrics first = engine.Step(batches[0]);
        long residentAfterWarmup = 0;
        for (int step = 1; step < 200; step++)
        {
            StepMetrics m = engine.Step(batches[step % batches.Count]);
            Assert.Equal(first.PoolReservedByteCount, m.PoolReservedByteCount);
            Assert.True(m.PoolReservedByteCount <= planned);
            Assert.True(m.PoolPeakInUseByteCount <= m.PoolReservedByteCount);
            // 3 pipeline buffers and one exact-size buffer for the smaller last sub-group, not one per sub-group.
            Assert.Equal((3 + 1, true), (engine.Optimizer.Pool.CountOf(BufferKind.OptimizerStates) + engine.Optimizer.Pool.CountOf(BufferKind.OptimizerTailStates),
                engine.Optimizer.SubGroups.Count > 10));
            Assert.Equal(first.PoolPeakInUseByteCount, m.PoolPeakInUseByteCount); // nothing rented beyond step 1's
            if (step == 20)
                residentAfterWarmup = ProcessMemory.ResidentByteCount();
        }
        Assert.Equal(planned, first.PoolReservedByteCount);
        long growth = ProcessMemory.ResidentByteCount() - residentAfterWarmup;
        Assert.True(growth < 64L << 20, $"resident set grew {growth:N0} bytes from step 20 to step 200");
    }
}
