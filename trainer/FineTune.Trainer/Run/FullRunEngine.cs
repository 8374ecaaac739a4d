using FineTune.Torch;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>Full fine-tuning in a run: the model (created, loaded from model.path or a checkpoint's model/), its <see cref="TrainingEngine"/> and <see cref="RunCheckpoints"/>.</summary>
internal sealed class FullRunEngine : IRunEngine
{
    private readonly TrainingEngine _engine;
    private readonly RunPlan _plan;
    private readonly long _baseline;

    private FullRunEngine(LlamaModel model, TrainingEngine engine, RunPlan plan, long baseline)
    {
        Model = model;
        _engine = engine;
        _plan = plan;
        _baseline = baseline;
    }

    public static FullRunEngine Create(RunSetup setup, long baselineByteCount, CheckpointInfo? checkpoint, LearningRateSchedule schedule, CheckpointStore store)
    {
        RunPlan plan = RunPlan.Create(setup.Recipe, baselineByteCount, resuming: checkpoint is not null);
        RunSpaceCheck.CheckCheckpoints(setup.Recipe, plan, store);
        RunDurationCheck.Check(setup.Recipe, plan, setup.TotalSteps);
        LlamaModel model = checkpoint is null
            ? setup.CreateModel(plan)
            : setup.LoadModel(checkpoint.FilePath(RunCheckpoints.ModelFolder), plan);
        try
        {
            return new FullRunEngine(model, new TrainingEngine(model, setup.EngineOptions(plan) with { Schedule = schedule }), plan, baselineByteCount);
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

    public long CheckpointByteCount => _plan.CheckpointByteCount;

    public string Description =>
        $"model: {Model.ParameterCount:N0} parameters, {Model.DType.Name()} on {Model.Device}; engine pools {_engine.PlannedHostByteCount / (double)(1 << 20):0.0} MiB; weights: {_engine.WeightLocation}; activations: {_engine.ActivationLocation}; optimizer states: {_engine.Options.OptimizerTier.ToString().ToLowerInvariant()}";

    public StepMetrics Step(IReadOnlyList<Batch> microBatches) => _engine.Step(microBatches);

    public string Save(Recipe recipe, long step, DataPosition position, long tokensSeen, string? tokenizerFolder) =>
        RunCheckpoints.Save(recipe, step, Model, _engine, position, tokensSeen, tokenizerFolder);

    public (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint) => RunCheckpoints.Restore(checkpoint, _engine);

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
