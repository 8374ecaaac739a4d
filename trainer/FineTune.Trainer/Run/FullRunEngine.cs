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

    private FullRunEngine(LlamaModel model, TrainingEngine engine, RunPlan plan, long baseline, RunSpaceCheck.Space space)
    {
        Model = model;
        _engine = engine;
        _plan = plan;
        _baseline = baseline;
        CheckpointSpace = space;
    }

    public static FullRunEngine Create(RunSetup setup, long baselineByteCount, CheckpointInfo? checkpoint, LearningRateSchedule schedule, CheckpointStore store,
        Action<string> message)
    {
        Recipe recipe = setup.Recipe;
        RunPlan plan = RunPlan.Create(recipe, baselineByteCount, resuming: checkpoint is not null);
        // a billion-scale step: the drive's floor measured now, and the plan's step time from this machine's rates
        RunIoFloor? floor = RunIoFloor.Measure(recipe.Offload.NvmeDir, plan.Traffic);
        if (floor is not null)
            plan = RunPlan.Create(recipe, baselineByteCount, resuming: checkpoint is not null,
                MachineRates.Measure(setup.ModelDType, (long)recipe.Training.BatchSize * recipe.Dataset.SeqLen, plan.Config.HiddenSize, plan.Config.IntermediateSize, floor.BytesPerSecond, floor.CpuSecondsPerByte));
        RunSpaceCheck.CheckCheckpoints(recipe, plan, store, setup.TotalSteps);
        RunSpaceCheck.Space space = RunSpaceCheck.Predict(recipe, plan, store.List().Count, setup.TotalSteps);
        RunDurationCheck.Check(recipe, plan, setup.TotalSteps);
        LlamaModel model = checkpoint is null
            ? setup.CreateModel(plan)
            : setup.LoadModel(checkpoint.FilePath(RunCheckpoints.ModelFolder), plan);
        try
        {
            var creating = new PhaseProgress(message, checkpoint is null ? "creating the engine" : "loading the engine");
            var engine = new TrainingEngine(model, setup.EngineOptions(plan) with { Schedule = schedule, SetupProgress = creating.Report });
            return new FullRunEngine(model, engine, plan, baselineByteCount, space) { IoFloor = floor };
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

    public RunPlan? Plan => _plan;

    public RunIoFloor? IoFloor { get; private init; }

    public RunSpaceCheck.Space CheckpointSpace { get; }

    public bool RecordStateChecksums
    {
        get => _engine.RecordStateChecksums;
        set => _engine.RecordStateChecksums = value;
    }

    public string Description =>
        $"model: {Model.ParameterCount:N0} parameters, {Model.DType.Name()} on {Model.Device}; engine pools {_engine.PlannedHostByteCount / (double)(1 << 20):0.0} MiB; weights: {_engine.WeightLocation}; activations: {_engine.ActivationLocation}; optimizer states: {_engine.Options.OptimizerTier.ToString().ToLowerInvariant()}";

    public StepMetrics Step(IReadOnlyList<Batch> microBatches) => _engine.Step(microBatches);

    public (string Folder, SavedStates States) Save(Recipe recipe, long step, DataPosition position, long tokensSeen, string? tokenizerFolder, PhaseProgress progress) =>
        RunCheckpoints.Save(recipe, step, Model, _engine, position, tokensSeen, tokenizerFolder, progress);

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
