using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Offload.Optimizer;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>
/// What a run puts into a checkpoint and takes back out. A checkpoint folder (step_N, framed by
/// <see cref="CheckpointWriter"/>) holds:
///   model/            the weights as safetensors with HF names plus config.json (<see cref="LlamaExporter"/>), so
///                     `finetune export` and transformers can read it directly;
///   optimizer/        fp32 master weights (whole, or as 16-bit residuals over model/'s bf16 weights), Adam m and v
///                     and the optimizer step (PartitionedOptimizer.SaveState);
///   trainer_state.json step, epoch, data position, RNG state, scheduler step, loss scale, tokens seen;
///   recipe.yaml       the resolved recipe; manifest.json (sizes and CRC-32C of all of the above).
/// Restoring loads the model from model/ and the optimizer state, which rewrites every weight from its fp32 master
/// (residual masters keep model/'s weights, their other half), so the weights after a resume are bitwise those of the
/// run that saved it.
/// The only randomness of a run is the data order (SplitMix64 of training.seed and the epoch) and the initial weights
/// (seeded); both are functions of the seed, so the "RNG state" saved is that seed.
/// A LoRA run's checkpoints hold the adapter instead of the model (<see cref="LoraCheckpoints"/>).
/// Data parallel: every rank writes its share of the states into optimizer/rank-R/ of the leader's temp folder (the
/// checkpoint folder must be one every rank sees: local ranks, or a shared filesystem); once every rank is done, the
/// leader alone writes the weights, trainer state, recipe and manifest and renames the folder. A rank that fails ends,
/// and with it the save: the leader never commits a checkpoint some rank's states are missing from. A resume reads
/// the states of any number of ranks.
/// </summary>
public static class RunCheckpoints
{
    public const string ModelFolder = "model";
    public const string OptimizerFolder = "optimizer";
    private const string ScheduleStepKey = "step";
    private const string CleanStepsKey = "loss_scale_clean_steps";
    private const string DataRngName = "data_order";

    /// <summary>
    /// Writes the checkpoint of <paramref name="step"/> optimizer steps and prunes to checkpoint.keep_last; returns its
    /// folder and how the optimizer states went in (linked to the NVMe swap file, or copied).
    /// </summary>
    public static (string Folder, SavedStates States) Save(Recipe recipe, long step, LlamaModel model, TrainingEngine engine, DataPosition position, long tokensSeen,
        string? tokenizerFolder, PhaseProgress? progress = null, RunRanks? ranks = null)
    {
        ranks ??= RunRanks.Single;
        var store = new CheckpointStore(recipe.Checkpoint.Dir);
        using CheckpointWriter? writer = ranks.IsLeader ? store.BeginWrite(step) : null;
        if (writer is not null)
        {
            string modelFolder = Path.Combine(writer.TempDirectory, ModelFolder);
            LlamaExporter.Export(model, modelFolder, tokenizerSourceFolder: tokenizerFolder);
            Register(writer, modelFolder, ModelFolder);
        }
        // the others learn the leader's temp folder (step_N.tmp-PID, created by now) from its pid
        int writerPid = (int)ranks.FromLeader(Environment.ProcessId);
        string optimizerFolder = Path.Combine(writer?.TempDirectory ?? CheckpointStore.TempDirectoryOf(recipe.Checkpoint.Dir, step, writerPid), OptimizerFolder);
        Directory.CreateDirectory(optimizerFolder);
        SavedStates states = engine.SaveOptimizerState(optimizerFolder, progress?.For("optimizer states", engine.Optimizer.StateByteCount));
        states = SumOverRanks(states, ranks); // and every rank's share is in place
        if (writer is null)
            return (Path.Combine(recipe.Checkpoint.Dir, CheckpointStore.DirectoryName(step)), states);
        RegisterStates(writer, optimizerFolder);
        writer.WriteTrainerState(TrainerStateAt(step, position, engine.StepCount, engine.LossScaler, engine.Options.Schedule, tokensSeen));
        writer.WriteRecipe(recipe);
        return (writer.Commit(recipe.Checkpoint.KeepLast), states);
    }

    /// <summary>Every rank's saved states in one record: bytes summed, linked when every rank's were.</summary>
    private static SavedStates SumOverRanks(SavedStates mine, RunRanks ranks)
    {
        if (ranks.WorldSize == 1)
            return mine;
        Span<double> sums = [mine.Linked ? 1 : 0, mine.ByteCount, mine.CopiedByteCount, mine.ChecksumReadByteCount];
        ranks.Sum(sums);
        bool linked = sums[0] == ranks.WorldSize;
        return new SavedStates(linked, (long)sums[1], (long)sums[2], (long)sums[3], linked ? null : mine.WhyCopied ?? "another rank's could not be linked");
    }

    /// <summary>"optimizer states linked to the swap file (38.2 GB, nothing copied)", or copied, and why.</summary>
    public static string Describe(SavedStates states) => states.Linked
        ? $"optimizer states linked to the NVMe swap file ({states.ByteCount / 1e9:0.00} GB, nothing copied{(states.ChecksumReadByteCount > 0 ? $"; {states.ChecksumReadByteCount / 1e9:0.00} GB read back for CRCs" : "")})"
        : $"optimizer states copied ({states.CopiedByteCount / 1e9:0.00} GB: {states.WhyCopied})";

    /// <summary>
    /// The checkpoint a resume starts from: recipe.resume "latest" (the newest, verified; a damaged one is refused
    /// with the previous one offered) or a step_N folder. Null when resume is latest and there is none yet.
    /// </summary>
    public static CheckpointInfo? Find(Recipe recipe)
    {
        if (recipe.Resume is null)
            return null;
        if (recipe.Resume is "latest" or "true")
            return new CheckpointStore(recipe.Checkpoint.Dir).LoadLatest();
        return CheckpointStore.Open(recipe.Resume);
    }

    /// <summary>Reads the trainer state of a verified checkpoint and restores the engine's optimizer, schedule and loss scale.</summary>
    public static (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint, TrainingEngine engine, PhaseProgress? progress = null)
    {
        var (state, position, scheduleStep) = ReadTrainerState(checkpoint, engine.LossScaler);
        LoadStates(checkpoint, folder => engine.LoadOptimizerState(folder, progress?.For("optimizer states", engine.Optimizer.StateByteCount)));
        engine.RestoreStepCount(scheduleStep);
        return (state, position);
    }

    // The parts every kind of run's checkpoint shares (full fine-tuning here, LoRA in LoraCheckpoints).

    /// <summary>optimizer/ written by <paramref name="save"/> into the checkpoint, its data file verified by its own manifest.</summary>
    internal static SavedStates SaveStates(CheckpointWriter writer, Func<string, SavedStates> save)
    {
        string optimizerFolder = Path.Combine(writer.TempDirectory, OptimizerFolder);
        Directory.CreateDirectory(optimizerFolder);
        SavedStates states = save(optimizerFolder);
        RegisterStates(writer, optimizerFolder);
        return states;
    }

    /// <summary>
    /// The optimizer folder's files (one optimizer's, or each rank's under rank-R/): each states file recorded by its
    /// length and verified by its own manifest (CRC'd per extent, checked as a resume reads it: nothing reads tens of GB twice).
    /// </summary>
    private static void RegisterStates(CheckpointWriter writer, string optimizerFolder)
    {
        foreach (string file in Directory.GetFiles(optimizerFolder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string relative = $"{OptimizerFolder}/{Path.GetRelativePath(optimizerFolder, file).Replace('\\', '/')}";
            if (Path.GetFileName(file) == OptimizerStateFile.DataFileName)
                writer.PathForVerifiedBy(relative, relative[..^OptimizerStateFile.DataFileName.Length] + OptimizerStateFile.ManifestFileName);
            else
                writer.PathFor(relative);
        }
    }

    /// <summary>The trainer state of a checkpoint taken after <paramref name="step"/> steps.</summary>
    internal static TrainerState TrainerStateAt(long step, DataPosition position, long scheduleStep, DynamicLossScaler? lossScaler,
        LearningRateSchedule? schedule, long tokensSeen)
    {
        var schedulerState = new JsonObject { [ScheduleStepKey] = scheduleStep, [CleanStepsKey] = lossScaler?.CleanSteps ?? 0 };
        RunSchedule.Save(schedulerState, schedule);
        return new TrainerState
        {
            Step = step,
            Epoch = position.Epoch,
            DataPosition = JsonSerializer.SerializeToNode(position)!.AsObject(),
            RngStates = new Dictionary<string, byte[]> { [DataRngName] = Encoding.ASCII.GetBytes(position.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
            SchedulerState = schedulerState,
            LossScale = lossScaler?.Scale ?? 1.0,
            SkippedSteps = lossScaler?.SkippedSteps ?? 0,
            TokensSeen = tokensSeen,
        };
    }

    /// <summary>A verified checkpoint's trainer state: the data position and the schedule's step; the loss scaler restored.</summary>
    internal static (TrainerState State, DataPosition Position, long ScheduleStep) ReadTrainerState(CheckpointInfo checkpoint, DynamicLossScaler? lossScaler)
    {
        TrainerState state = checkpoint.ReadTrainerState();
        DataPosition position = state.DataPosition.Deserialize<DataPosition>()
            ?? throw new UserErrorException($"{checkpoint.FilePath(TrainerState.FileName)} has no data position; resume from another checkpoint.");
        long scheduleStep = state.SchedulerState[ScheduleStepKey]?.GetValue<long>() ?? state.Step;
        lossScaler?.Restore(state.LossScale, state.SchedulerState[CleanStepsKey]?.GetValue<int>() ?? 0, state.SkippedSteps);
        return (state, position, scheduleStep);
    }

    /// <summary>Loads optimizer/ with <paramref name="load"/>; damaged states are the resume's one damage sentence.</summary>
    internal static void LoadStates(CheckpointInfo checkpoint, Action<string> load)
    {
        try
        {
            load(checkpoint.FilePath(OptimizerFolder));
        }
        catch (DamagedStatesException damaged)
        {
            // the states' CRCs are checked as they are read (once): the same sentence as a damage the manifest finds
            string file = damaged.DataPath is string path ? Path.GetRelativePath(checkpoint.DirectoryPath, path).Replace('\\', '/') : $"{OptimizerFolder}/{OptimizerStateFile.DataFileName}";
            throw new CheckpointStore(Path.GetDirectoryName(checkpoint.DirectoryPath)!).Damaged(checkpoint, $"file {file} {damaged.Problem}");
        }
    }

    /// <summary>Adds every file under <paramref name="folder"/> (written by other code) to the checkpoint's manifest.</summary>
    internal static void Register(CheckpointWriter writer, string folder, string relativeFolder, string? except = null)
    {
        foreach (string file in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where(f => Path.GetRelativePath(folder, f) != except))
            writer.PathFor($"{relativeFolder}/{Path.GetRelativePath(folder, file).Replace('\\', '/')}");
    }
}
