using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;

using FineTune.Trainer.Planning;

namespace FineTune.Trainer.Runs;

/// <summary>Full fine-tuning in a run: the model (created, loaded from model.path or a checkpoint's model/), its <see cref="TrainingEngine"/> and <see cref="RunCheckpoints"/>.</summary>
internal sealed class FullRunEngine : IRunEngine
{
    private readonly TrainingEngine _engine;
    private readonly RunPlan _plan;
    private readonly long _baseline;
    private readonly RunRanks _ranks;

    private FullRunEngine(LlamaModel model, TrainingEngine engine, RunPlan plan, long baseline, RunSpaceCheck.Space space, RunRanks ranks)
    {
        Model = model;
        _engine = engine;
        _plan = plan;
        _baseline = baseline;
        CheckpointSpace = space;
        _ranks = ranks;
    }

    /// <summary>
    /// With <paramref name="ranks"/> of more than one, every rank builds the same model and a ZeRO engine over the group
    /// for its rows of each global batch (the plan's checks use the whole batch: a bound for each rank's share).
    /// </summary>
    public static FullRunEngine Create(RunSetup setup, long baselineByteCount, CheckpointInfo? checkpoint, LearningRateSchedule schedule, CheckpointStore store,
        Action<string> message, RunRanks ranks)
    {
        Recipe recipe = setup.Recipe;
        RunPlan plan = RunPlan.Create(recipe, baselineByteCount, resuming: checkpoint is not null);
        // a billion-scale step: the drive's floor measured now, and the plan's step time from this machine's rates
        // (one process: ranks measuring at once would each see a share of the drive)
        RunIoFloor? floor = ranks.WorldSize == 1 ? RunIoFloor.Measure(recipe.Offload.NvmeDir, plan.Traffic) : null;
        if (floor is not null)
            plan = RunPlan.Create(recipe, baselineByteCount, resuming: checkpoint is not null,
                plan.WithLayerTimed(MachineRates.Measure(setup.ModelDType, (long)recipe.Training.BatchSize * recipe.Dataset.SeqLen, plan.Config.HiddenSize, plan.Config.IntermediateSize, floor.BytesPerSecond, floor.CpuSecondsPerByte),
                    recipe));
        RunSpaceCheck.CheckCheckpoints(recipe, plan, store, setup.TotalSteps);
        RunSpaceCheck.Space space = RunSpaceCheck.Predict(recipe, plan, store.List().Count, setup.TotalSteps);
        RunDurationCheck.Check(recipe, plan, setup.TotalSteps);
        LlamaModel model = checkpoint is null
            ? setup.CreateModel(plan)
            : setup.LoadModel(checkpoint.FilePath(RunCheckpoints.ModelFolder), plan);
        try
        {
            var creating = new PhaseProgress(message, checkpoint is null ? "creating the engine" : "loading the engine");
            var engine = new TrainingEngine(model, setup.EngineOptions(plan) with
            {
                Schedule = schedule, SetupProgress = creating.Report, StatesFromCheckpoint = checkpoint is not null,
                DataParallelGroup = ranks.Group, MicroBatchSize = setup.LoaderOptions.BatchSize / ranks.WorldSize,
            });
            return new FullRunEngine(model, engine, plan, baselineByteCount, space, ranks) { IoFloor = floor };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public LlamaModel Model { get; }

    public TrainingOptions Options => _engine.Options;

    public long PlannedHostByteCount => _engine.PlannedHostByteCount;

    public long PoolReservedByteCount => _engine.PoolReservedByteCount;

    public long PredictedHostPeakByteCount => _plan.HostPeakByteCount(_baseline);

    public (long Peak, long Bound)? GradientMemory => _engine.Plan.ConsumedGradientBoundByteCount > 0
        ? (_engine.PeakConsumedGradientByteCount, _engine.Plan.ConsumedGradientBoundByteCount + _engine.Plan.HeldByteCount) : null;

    public RunPlan? Plan => _plan;

    public RunIoFloor? IoFloor { get; private init; }

    public RunSpaceCheck.Space CheckpointSpace { get; }

    public bool RecordStateChecksums
    {
        get => _engine.RecordStateChecksums;
        set => _engine.RecordStateChecksums = value;
    }

    public string Description =>
        $"model: {Model.ParameterCount:N0} parameters, {Model.DType.Name()} on {Model.Device}; engine pools {_engine.PlannedHostByteCount / (double)(1 << 20):0.0} MiB; weights: {_engine.WeightLocation}; activations: {_engine.ActivationLocation}; optimizer states: {_engine.Options.OptimizerTier.ToString().ToLowerInvariant()}{Environment.NewLine}update: {_engine.UpdateStrategy}{(_engine.Plan.SplitElement is long split ? $" (the top {(_engine.Plan.Layout.ElementCount - split) / (double)_engine.Plan.Layout.ElementCount:P0} of the parameters)" : "")}"
        + (_ranks.WorldSize == 1 ? "" : $"{Environment.NewLine}data parallel: rank {_ranks.Rank} of {_ranks.WorldSize}, {_engine.Options.MicroBatchSize} rows of each batch; optimizer states of {_engine.Optimizer.SubGroups.Count} of {_engine.Plan.Layout.SubGroups.Count} sub-groups ({_engine.Optimizer.StateByteCount / 1e6:0.0} of {12 * _engine.Plan.Layout.ElementCount / 1e6:0.0} MB) in {_engine.Optimizer.StateLocation}");

    public StepMetrics Step(IReadOnlyList<Batch> microBatches) => _engine.Step(microBatches);

    public (string Folder, SavedStates States) Save(Recipe recipe, long step, DataPosition position, long tokensSeen, string? tokenizerFolder, PhaseProgress progress) =>
        RunCheckpoints.Save(recipe, step, Model, _engine, position, tokensSeen, tokenizerFolder, progress, _ranks);

    public (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint, PhaseProgress progress) => RunCheckpoints.Restore(checkpoint, _engine, progress);

    public void Dispose()
    {
        try
        {
            _engine.Dispose();
        }
        finally
        {
            Model.Dispose();
        }
    }
}
