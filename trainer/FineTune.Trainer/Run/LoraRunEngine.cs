using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;

namespace FineTune.Trainer.Runs;

/// <summary>
/// LoRA in a run: the base opened lazily from model.path (or, with model.config, created streamed and generated from
/// training.seed straight into the engine's store), the adapters (fresh, from model.lora.path, or a resumed checkpoint's adapter/),
/// the <see cref="AdapterEngine"/> filled from the base once, and <see cref="LoraCheckpoints"/>. A resume checks the
/// base's file sizes against the checkpoint before streaming it and its CRC-32Cs after.
/// </summary>
internal sealed class LoraRunEngine : IRunEngine
{
    private readonly LoraAdapters _adapters;
    private readonly AdapterEngine _engine;
    private readonly LoraRunPlan _plan;
    private readonly long _baseline;

    private LoraRunEngine(LlamaModel model, LoraAdapters adapters, AdapterEngine engine, LoraRunPlan plan, long baseline, RunSpaceCheck.Space space)
    {
        CheckpointSpace = space;
        Model = model;
        _adapters = adapters;
        _engine = engine;
        _plan = plan;
        _baseline = baseline;
    }

    public static LoraRunEngine Create(RunSetup setup, long baselineByteCount, CheckpointInfo? checkpoint, LearningRateSchedule schedule, CheckpointStore store)
    {
        Recipe recipe = setup.Recipe;
        if (checkpoint is not null && !LoraCheckpoints.IsLora(checkpoint))
            throw new UserErrorException($"{checkpoint.DirectoryPath} is a full fine-tuning checkpoint but the recipe trains LoRA (model.adapter: lora); resume it without model.adapter, or start a new LoRA run on its weights with model.path={checkpoint.FilePath(RunCheckpoints.ModelFolder)}.");
        string? folder = recipe.Model.Path;
        LlamaConfig config = folder is not null ? LlamaConfigReader.ReadFolder(folder) : RunSetup.ConfigOf(recipe, setup.Tokenizer);
        LoraRunPlan plan = LoraRunPlan.Create(recipe, config, baselineByteCount, setup.TotalSteps);
        RunSpaceCheck.Space space = plan.CheckpointSpace(recipe, store.List().Count, setup.TotalSteps);
        RunSpaceCheck.CheckCheckpoints(recipe, space);
        if (checkpoint is not null && folder is not null)
            LoraCheckpoints.CheckBaseSizes(checkpoint, folder);
        LlamaModel model = folder is not null
            ? LlamaModel.Open(folder, plan.WeightDType, Device.Cpu)
            : LlamaModel.CreateStreamed(config, recipe.Training.Seed, plan.WeightDType, Device.Cpu);
        LoraAdapters? adapters = null;
        try
        {
            adapters = checkpoint is null ? LoraSetup.CreateAdapters(recipe, model) : Resumed(checkpoint, model, recipe, plan.Lora);
            BaseWeights source = folder is not null ? BaseWeights.FromFolder(folder) : BaseWeights.Generated(recipe.Training.Seed);
            var engine = new AdapterEngine(model, adapters, plan.Options with { Schedule = schedule }, source);
            return new LoraRunEngine(model, adapters, engine, plan, baselineByteCount, space);
        }
        catch
        {
            adapters?.Dispose();
            model.Dispose();
            throw;
        }
    }

    public LlamaModel Model { get; }

    public TrainingOptions Options => _engine.Options;

    public long PlannedHostByteCount => _engine.PlannedHostByteCount;

    public long PoolReservedByteCount => _engine.PoolReservedByteCount;

    public long PredictedHostPeakByteCount => _plan.HostPeakByteCount(_baseline);

    public RunSpaceCheck.Space CheckpointSpace { get; }

    public bool RecordStateChecksums
    {
        get => _engine.RecordStateChecksums;
        set => _engine.RecordStateChecksums = value;
    }

    public string Description
    {
        get
        {
            LoraConfig c = _adapters.Config;
            return $"model: {Model.ParameterCount:N0} base parameters, {Model.DType.Name()} on {Model.Device}, frozen; LoRA r {c.Rank} alpha {c.Alpha:G6} on {string.Join(", ", c.Targets)}: " +
                $"{_engine.Plan.TrainedElementCount:N0} trained parameters; engine {_engine.PlannedHostByteCount / (double)(1 << 20):0.0} MiB; " +
                $"base: {_engine.WeightLocation} (filled in {_engine.BaseFillSeconds:0.0} s); activations: {_engine.ActivationLocation}; adapter states: {_engine.Options.OptimizerTier.ToString().ToLowerInvariant()}";
        }
    }

    public StepMetrics Step(IReadOnlyList<Batch> microBatches) => _engine.Step(microBatches);

    public (string Folder, SavedStates States) Save(Recipe recipe, long step, DataPosition position, long tokensSeen, string? tokenizerFolder, PhaseProgress progress) =>
        LoraCheckpoints.Save(recipe, step, _engine, position, tokensSeen, progress);

    public (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint, PhaseProgress progress) => LoraCheckpoints.Restore(checkpoint, _engine, progress);

    public void Dispose()
    {
        try
        {
            _engine.Dispose();
        }
        finally
        {
            _adapters.Dispose();
            Model.Dispose();
        }
    }

    /// <summary>The adapter a checkpoint saved, which must be the recipe's shape (its dropout is the recipe's).</summary>
    private static LoraAdapters Resumed(CheckpointInfo checkpoint, LlamaModel model, Recipe recipe, LoraConfig config)
    {
        LoraAdapters loaded = PeftAdapterReader.Load(checkpoint.FilePath(LoraCheckpoints.AdapterFolder), model, recipe.Training.Seed, dropout: config.Dropout);
        if (loaded.Config.Equals(config))
            return loaded;
        LoraConfig f = loaded.Config;
        loaded.Dispose();
        throw new UserErrorException(
            $"{checkpoint.DirectoryPath} holds an adapter with r {f.Rank}, alpha {f.Alpha:G6}, targets [{string.Join(", ", f.Targets)}], trained in full [{string.Join(", ", f.Trainable)}], which differs from the recipe's model.lora; resume with the recipe the run was started with.");
    }
}
