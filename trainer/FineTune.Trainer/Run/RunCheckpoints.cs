using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
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
///   optimizer/        fp32 master weights, Adam m and v and the optimizer step (PartitionedOptimizer.SaveState);
///   trainer_state.json step, epoch, data position, RNG state, scheduler step, loss scale, tokens seen;
///   recipe.yaml       the resolved recipe; manifest.json (sizes and CRC-32C of all of the above).
/// Restoring loads the optimizer state, which rewrites every weight from its fp32 master, so the weights after a
/// resume are bitwise those of the run that saved it.
/// The only randomness of a run is the data order (SplitMix64 of training.seed and the epoch) and the initial weights
/// (seeded); both are functions of the seed, so the "RNG state" saved is that seed.
/// </summary>
public static class RunCheckpoints
{
    public const string ModelFolder = "model";
    public const string OptimizerFolder = "optimizer";
    private const string ScheduleStepKey = "step";
    private const string CleanStepsKey = "loss_scale_clean_steps";
    private const string DataRngName = "data_order";

    /// <summary>Writes the checkpoint of <paramref name="step"/> optimizer steps and prunes to checkpoint.keep_last; returns its folder.</summary>
    public static string Save(Recipe recipe, long step, LlamaModel model, TrainingEngine engine, DataPosition position, long tokensSeen, string? tokenizerFolder)
    {
        var store = new CheckpointStore(recipe.Checkpoint.Dir);
        using CheckpointWriter writer = store.BeginWrite(step);
        string modelFolder = Path.Combine(writer.TempDirectory, ModelFolder);
        LlamaExporter.Export(model, modelFolder, tokenizerSourceFolder: tokenizerFolder);
        Register(writer, modelFolder, ModelFolder);
        string optimizerFolder = Path.Combine(writer.TempDirectory, OptimizerFolder);
        Directory.CreateDirectory(optimizerFolder);
        engine.SaveOptimizerState(optimizerFolder);
        Register(writer, optimizerFolder, OptimizerFolder);
        var schedulerState = new JsonObject { [ScheduleStepKey] = engine.StepCount, [CleanStepsKey] = engine.LossScaler?.CleanSteps ?? 0 };
        RunSchedule.Save(schedulerState, engine.Options.Schedule);
        writer.WriteTrainerState(new TrainerState
        {
            Step = step,
            Epoch = position.Epoch,
            DataPosition = JsonSerializer.SerializeToNode(position)!.AsObject(),
            RngStates = new Dictionary<string, byte[]> { [DataRngName] = Encoding.ASCII.GetBytes(position.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
            SchedulerState = schedulerState,
            LossScale = engine.LossScaler?.Scale ?? 1.0,
            SkippedSteps = engine.LossScaler?.SkippedSteps ?? 0,
            TokensSeen = tokensSeen,
        });
        writer.WriteRecipe(recipe);
        return writer.Commit(recipe.Checkpoint.KeepLast);
    }

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
    public static (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint, TrainingEngine engine)
    {
        TrainerState state = checkpoint.ReadTrainerState();
        DataPosition position = state.DataPosition.Deserialize<DataPosition>()
            ?? throw new UserErrorException($"{checkpoint.FilePath(TrainerState.FileName)} has no data position; resume from another checkpoint.");
        engine.LoadOptimizerState(checkpoint.FilePath(OptimizerFolder));
        long scheduleStep = state.SchedulerState[ScheduleStepKey]?.GetValue<long>() ?? state.Step;
        engine.RestoreStepCount(scheduleStep);
        engine.LossScaler?.Restore(state.LossScale, state.SchedulerState[CleanStepsKey]?.GetValue<int>() ?? 0, state.SkippedSteps);
        return (state, position);
    }

    /// <summary>Adds every file under <paramref name="folder"/> (written by other code) to the checkpoint's manifest.</summary>
    private static void Register(CheckpointWriter writer, string folder, string relativeFolder)
    {
        foreach (string file in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            writer.PathFor($"{relativeFolder}/{Path.GetRelativePath(folder, file).Replace('\\', '/')}");
    }
}
