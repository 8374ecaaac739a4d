using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tests.Runs;
using FineTune.Trainer.Training;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Planning;

/// <summary>
/// The one memory plan: what <see cref="MemoryPlan"/> says each host buffer class needs is exactly what the engine's
/// pool reserves for it, class by class, on every tier combination; and `finetune plan`'s figures are that plan's.
/// </summary>
public sealed class MemoryPlanTests
{
    public static TheoryData<string, bool, DType, StateTier, int, ParameterTier, long> Configurations => new()
    {
        { "resident, host states", false, DType.Float32, StateTier.Host, 0, ParameterTier.Device, 8192 },
        { "nvme states, nvme activations", true, DType.Float32, StateTier.Nvme, -1, ParameterTier.Device, 4096 },
        { "mixed activations, tail sub-group", false, DType.BFloat16, StateTier.Nvme, 2, ParameterTier.Device, 5000 },
        { "weights on nvme, untied", false, DType.Float32, StateTier.Nvme, -1, ParameterTier.Nvme, 8192 },
        { "weights on nvme, tied, bf16", true, DType.BFloat16, StateTier.Host, 1, ParameterTier.Nvme, 20000 },
        { "one sub-group", false, DType.Float32, StateTier.Nvme, 0, ParameterTier.Device, 1 << 24 },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void EveryPoolClassTheEngineReservesIsTheOneThePlanPredicts(string name, bool tied, DType dtype, StateTier states, int nvmeLayers, ParameterTier weights, long subGroup)
    {
        using var scratch = new ScratchDirectory();
        using LlamaModel model = Model(dtype, tied);
        TrainingOptions options = Options() with
        {
            Precision = dtype == DType.BFloat16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
            OptimizerTier = states, NvmeActivationLayers = nvmeLayers, ParameterTier = weights, NvmeDirectory = scratch.Path,
            SubGroupElementCount = subGroup,
        };
        MemoryPlan plan = MemoryPlan.For(model.Config, dtype, options);
        using var engine = new TrainingEngine(model, options);
        Assert.NotEmpty(plan.Pool.Classes);
        foreach (BufferKind kind in Enum.GetValues<BufferKind>())
            Assert.True(plan.Pool.ReservedByteCount(kind) == engine.ReservedByteCountOf(kind), $"{name}: {kind.Describe()} planned {plan.Pool.ReservedByteCount(kind)}, reserved {engine.ReservedByteCountOf(kind)}");
        Assert.Equal(plan.PoolByteCount, engine.PoolReservedByteCount);
        Assert.Equal(plan.PoolByteCount, engine.PlannedHostByteCount);
        // the NVMe files are the plan's too
        long onDisk = Directory.GetFiles(scratch.Path, "*.swap").Sum(f => new FileInfo(f).Length);
        Assert.Equal(plan.NvmeFileByteCount, onDisk);
    }

    [Fact]
    public void FinetunePlanShowsTheEnginesPool()
    {
        using var tiny = new TinyRunRecipe();
        string swap = Path.Combine(tiny.RunDirectory, "swap");
        Directory.CreateDirectory(swap);
        Recipe recipe = tiny.Load("offload.sub_group_params=3000");
        RunPlan plan = RunPlan.Create(recipe, baselineByteCount: 0);
        RunSetup setup = RunSetup.Create(recipe);
        using LlamaModel model = setup.CreateModel(plan);
        using var engine = new TrainingEngine(model, setup.EngineOptions(plan));
        Assert.Equal(plan.PoolByteCount, engine.PoolReservedByteCount);
        foreach (BufferClass c in plan.Memory.Pool.Classes)
            Assert.Equal(c.ReservedByteCount, engine.ReservedByteCountOf(c.Kind));
        Assert.Equal(plan.NvmeResidentByteCount, Directory.GetFiles(swap, "*.swap").Sum(f => new FileInfo(f).Length));
    }
}
