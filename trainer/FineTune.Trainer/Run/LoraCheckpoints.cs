using FineTune.Offload.Optimizer;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training.Adapters;

namespace FineTune.Trainer.Runs;

/// <summary>
/// What a LoRA run puts into a checkpoint (step_N, framed by <see cref="CheckpointWriter"/>, like every checkpoint)
/// and takes back out:
///   adapter/          the PEFT folder (adapter_config.json, adapter_model.safetensors in float32: every A, B and the
///                     weights trained in full), what `finetune export step_N OUT` writes and peft loads;
///   optimizer/        fp32 masters, Adam m and v of the trained parameters only, and the optimizer step;
///   base.json         the frozen base by path and CRC-32C of its files (<see cref="BaseFingerprint"/>), not a copy;
///   trainer_state.json, recipe.yaml, manifest.json as in <see cref="RunCheckpoints"/>.
/// Restoring loads the optimizer state, which rewrites every trained tensor from its fp32 master, after the base
/// streamed into the new engine has been checked against base.json, so the resumed run's losses are bitwise those
/// of the run that saved it.
/// </summary>
public static class LoraCheckpoints
{
    public const string AdapterFolder = "adapter";

    /// <summary>True when <paramref name="checkpoint"/> was written by a LoRA run (it holds base.json and adapter/).</summary>
    public static bool IsLora(CheckpointInfo checkpoint) =>
        File.Exists(checkpoint.FilePath(BaseFingerprint.FileName)) && Directory.Exists(checkpoint.FilePath(AdapterFolder));

    /// <summary>
    /// Writes the checkpoint of <paramref name="step"/> optimizer steps and prunes to checkpoint.keep_last; returns its
    /// folder and how the adapters' optimizer states went in.
    /// </summary>
    public static (string Folder, SavedStates States) Save(Recipe recipe, long step, AdapterEngine engine, DataPosition position, long tokensSeen,
        PhaseProgress? progress = null)
    {
        BaseFingerprint fingerprint = engine.BaseFingerprint
            ?? throw new InvalidOperationException("a LoRA run's engine records its base (FromFolder or Generated)");
        var store = new CheckpointStore(recipe.Checkpoint.Dir);
        using CheckpointWriter writer = store.BeginWrite(step);
        string adapterFolder = Path.Combine(writer.TempDirectory, AdapterFolder);
        engine.SaveAdapter(adapterFolder, fingerprint.IsFolder ? fingerprint.Source : null);
        RunCheckpoints.Register(writer, adapterFolder, AdapterFolder);
        SavedStates states = RunCheckpoints.SaveStates(writer, folder => engine.SaveOptimizerState(folder, progress?.For("adapter optimizer states", engine.Plan.StateByteCount)));
        writer.WriteText(BaseFingerprint.FileName, fingerprint.ToJson());
        writer.WriteTrainerState(RunCheckpoints.TrainerStateAt(step, position, engine.StepCount, engine.LossScaler, engine.Options.Schedule, tokensSeen));
        writer.WriteRecipe(recipe);
        return (writer.Commit(recipe.Checkpoint.KeepLast), states);
    }

    /// <summary>The base record of a verified LoRA checkpoint.</summary>
    public static BaseFingerprint RecordedBase(CheckpointInfo checkpoint) => BaseFingerprint.Read(checkpoint.FilePath(BaseFingerprint.FileName));

    /// <summary>
    /// Checks the base the engine streamed against the checkpoint's record (one sentence naming a changed file),
    /// then restores the optimizer state, the schedule's step and the loss scale.
    /// </summary>
    public static (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint, AdapterEngine engine, PhaseProgress? progress = null)
    {
        CheckBase(checkpoint, engine.BaseFingerprint, sizesOnly: false);
        var (state, position, scheduleStep) = RunCheckpoints.ReadTrainerState(checkpoint, engine.LossScaler);
        RunCheckpoints.LoadStates(checkpoint, folder => engine.LoadOptimizerState(folder, progress?.For("adapter optimizer states", engine.Plan.StateByteCount)));
        engine.RestoreStepCount(scheduleStep);
        return (state, position);
    }

    /// <summary>
    /// Before the base is streamed (cheap): refuses a base folder whose files are not the sizes <paramref name="checkpoint"/>
    /// recorded. The CRCs are compared once the engine has read it (<see cref="Restore"/>).
    /// </summary>
    public static void CheckBaseSizes(CheckpointInfo checkpoint, string folder)
    {
        BaseFingerprint recorded = RecordedBase(checkpoint);
        if (!recorded.IsFolder)
            return;
        var sizes = recorded.Files.Select(f => Path.Combine(folder, f.Name)).Where(File.Exists)
            .Select(path => new BaseFileHash(Path.GetFileName(path), new FileInfo(path).Length, 0)).ToList();
        CheckBase(checkpoint, recorded, recorded with { Files = sizes }, sizesOnly: true);
    }

    private static void CheckBase(CheckpointInfo checkpoint, BaseFingerprint? current, bool sizesOnly) =>
        CheckBase(checkpoint, RecordedBase(checkpoint), current, sizesOnly);

    private static void CheckBase(CheckpointInfo checkpoint, BaseFingerprint recorded, BaseFingerprint? current, bool sizesOnly)
    {
        if (current is null)
            throw new InvalidOperationException("the resumed engine has no base fingerprint to check");
        if (current.DifferenceFrom(recorded, sizesOnly) is string difference)
            throw new UserErrorException($"The LoRA base changed since {checkpoint.DirectoryPath} was written: {difference}.");
    }
}
