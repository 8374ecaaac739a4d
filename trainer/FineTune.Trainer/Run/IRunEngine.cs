using FineTune.Offload.Optimizer;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>
/// What <see cref="TrainingRun"/>'s loop needs of the engine it trains with, so one loop (data, logging, eval,
/// checkpoints, cancellation) serves both kinds of run: full fine-tuning (<see cref="FullRunEngine"/>:
/// TrainingEngine, RunPlan, RunCheckpoints) and LoRA (<see cref="LoraRunEngine"/>: AdapterEngine, LoraRunPlan,
/// LoraCheckpoints). Each owns its model and engine, makes its plan's checks and decides what goes into its checkpoints.
/// </summary>
internal interface IRunEngine : IDisposable
{
    /// <summary>
    /// The engine for <paramref name="setup"/>'s recipe, built from scratch or for a resume from <paramref name="checkpoint"/>,
    /// after its plan's checks (budgets; checkpoints and swap fit the disk of <paramref name="store"/>); long setup
    /// phases report through <paramref name="message"/>. With <paramref name="ranks"/> of more than one, the engine is
    /// this rank's of a ZeRO data-parallel run (full fine-tuning only).
    /// </summary>
    static IRunEngine Create(RunSetup setup, long baselineByteCount, CheckpointInfo? checkpoint, LearningRateSchedule schedule, CheckpointStore store,
        Action<string> message, RunRanks? ranks = null)
    {
        ranks ??= RunRanks.Single;
        if (LoraSetup.ConfigOf(setup.Recipe) is null)
            return FullRunEngine.Create(setup, baselineByteCount, checkpoint, schedule, store, message, ranks);
        if (ranks.WorldSize > 1)
            throw new UserErrorException($"LoRA runs train on one process for now (this one is rank {ranks.Rank} of {ranks.WorldSize}); run the LoRA recipe without --nproc or torchrun.");
        return LoraRunEngine.Create(setup, baselineByteCount, checkpoint, schedule, store);
    }

    /// <summary>The model being trained (evaluated between steps with model.Forward).</summary>
    LlamaModel Model { get; }

    TrainingOptions Options { get; }

    /// <summary>Consumed gradients: the most bytes of them alive at once (with the weights they carry and the held ones), and the plan's bound on it; null otherwise.</summary>
    (long Peak, long Bound)? GradientMemory => null;

    /// <summary>Host bytes the engine reserves by plan.</summary>
    long PlannedHostByteCount { get; }

    long PoolReservedByteCount { get; }

    /// <summary>The plan's host peak for this run.</summary>
    long PredictedHostPeakByteCount { get; }

    /// <summary>The disk the run's checkpoints take, as the plan predicts it (checked again before each save).</summary>
    RunSpaceCheck.Space CheckpointSpace { get; }

    /// <summary>The run's "model: ..." line: parameters, dtype, where each state lives.</summary>
    string Description { get; }

    /// <summary>The full fine-tuning plan (step time, NVMe traffic); null for LoRA, whose plan is its own.</summary>
    RunPlan? Plan => null;

    /// <summary>The drive's rate for reads and writes at once, measured as the run began (billion-scale steps); null otherwise.</summary>
    RunIoFloor? IoFloor => null;

    /// <summary>Keep the CRC of each optimizer state the next step writes (a checkpoint follows it).</summary>
    bool RecordStateChecksums { get; set; }

    StepMetrics Step(IReadOnlyList<Batch> microBatches);

    /// <summary>Writes the checkpoint of <paramref name="step"/> steps; returns its folder and how the optimizer states went in.</summary>
    (string Folder, SavedStates States) Save(Recipe recipe, long step, DataPosition position, long tokensSeen, string? tokenizerFolder, PhaseProgress progress);

    /// <summary>Restores the engine from a verified checkpoint of this kind of run.</summary>
    (TrainerState State, DataPosition Position) Restore(CheckpointInfo checkpoint, PhaseProgress progress);
}
