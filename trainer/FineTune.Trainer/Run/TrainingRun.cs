using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Plots;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.TensorBoard;
using FineTune.Trainer.Training;

// Namespace "Runs", not "Run": a namespace named Run hides methods named Run called unqualified in FineTune.Trainer.*.
namespace FineTune.Trainer.Runs;

/// <summary>
/// One `finetune run`: takes a resolved <see cref="Recipe"/> and does everything. Setup (<see cref="RunSetup"/>),
/// then resume from a checkpoint if asked (<see cref="RunCheckpoints"/>), then the loop: gradient_accumulation_steps
/// batches from the <see cref="DataLoader"/> -> <see cref="TrainingEngine.Step(IReadOnlyList{Batch})"/> -> metrics.jsonl,
/// TensorBoard scalars every log_every_steps, the progress line, eval/loss every eval.every_steps, a checkpoint every
/// checkpoint.every_steps and at the end. Cancellation (Ctrl-C, SIGTERM) is honoured at the end of a step: a checkpoint
/// is saved, then the run returns with <see cref="RunResult.Interrupted"/> set.
/// Determinism: a fixed libtorch thread count, a data order that is a function of the seed and the position, and the
/// engine's whole state in the checkpoint make a resumed run's losses bitwise those of an uninterrupted one.
/// Data parallel (<see cref="Group"/>): every rank runs this loop on its shard of each global batch with a ZeRO engine;
/// the leader (rank 0) locks and checks the run folder first, and alone writes metrics.jsonl, TensorBoard (with the
/// ranks' bytes summed and peak memory maxed), evaluations and the plot; checkpoints are written together
/// (<see cref="RunCheckpoints.Save"/>); a stop asked of any rank stops every rank after the same step.
/// </summary>
public sealed class TrainingRun
{
    private readonly Recipe _recipe;
    private readonly RunProgress _progress;

    public TrainingRun(Recipe recipe, RunProgress progress)
    {
        _recipe = recipe;
        _progress = progress;
    }

    /// <summary>
    /// Resuming from a checkpoint older than the newest in the same checkpoint folder deletes the newer ones
    /// (`--discard-newer`); without it such a resume is refused, since it would overwrite them.
    /// </summary>
    public bool DiscardNewer { get; init; }

    /// <summary>The data-parallel group this process is one rank of; null for a run of one process.</summary>
    public Torch.Distributed.ProcessGroup? Group { get; init; }

    public RunResult Execute(CancellationToken cancel)
    {
        Torch.Torch.SetNumThreads(TorchThreadCount());
        RunDirectories.RefuseLinks(_recipe);
        var ranks = RunRanks.Of(Group);
        IReadOnlyList<string> created = RunDirectories.Prepare(_recipe);
        // the leader holds the run folder for all ranks (the others would be refused by its lock). A refusal removes
        // nothing: a run started at the same moment may have found the same folders missing and holds them now.
        using RunFolderLock? folderLock = ranks.IsLeader ? RunFolderLock.Acquire(RunDirectories.LockedFolders(_recipe)) : null;
        try
        {
            return Train(_recipe, ranks, cancel);
        }
        catch
        {
            // a run that failed before writing anything leaves no empty run folders behind
            if (ranks.IsLeader)
                RunDirectories.RemoveIfEmpty(created);
            throw;
        }
    }

    private RunResult Train(Recipe recipe, RunRanks ranks, CancellationToken cancel)
    {
        var store = new CheckpointStore(recipe.Checkpoint.Dir);
        (Torch.Blas.BlasKind blas, string? blasPath) = Torch.Blas.BlasLibrary.Resolve();
        if (Torch.Blas.BlasLibrary.Advice(blas, blasPath) is string advice)
            _progress.Message($"warning: {advice}");
        string compute = $"libtorch {Torch.Torch.NumThreads} threads of {Environment.ProcessorCount} cores, OpenMP wait {Torch.Native.OpenMpPolicy.Description}, BLAS {blas}";
        if (!ranks.IsLeader)
            ranks.Barrier(); // the leader's checks of the run folder first (it also removes a crashed run's temp folders)
        CheckpointInfo? checkpoint = RunCheckpoints.Find(recipe);
        bool sameRun = checkpoint is not null && RunDirectories.IsInside(checkpoint.DirectoryPath, recipe.Checkpoint.Dir);
        IReadOnlyList<CheckpointInfo> newer = sameRun ? store.Newer(checkpoint!.Step) : [];
        if (newer.Count > 0 && !DiscardNewer)
            throw new UserErrorException($"{recipe.Checkpoint.Dir} holds {newer.Count} checkpoint(s) newer than {checkpoint!.DirectoryPath} ({string.Join(", ", newer.Select(c => Path.GetFileName(c.DirectoryPath)))}), which resuming from it would overwrite; add --discard-newer to delete them, or continue from it in a new run folder with output_dir=NEW.");
        if (ranks.IsLeader)
        {
            if (checkpoint is null)
                RunDirectories.StartFresh(recipe, continuesThisRun: recipe.Resume is not null);
            else if (!sameRun)
                RunDirectories.StartFresh(recipe, continuesThisRun: false); // a new run that branches from another run's checkpoint
            ranks.Barrier();
        }
        RunSetup setup = RunSetup.Create(recipe);
        DataLoaderOptions loaderOptions = setup.LoaderOptions with { Rank = ranks.Rank, WorldSize = ranks.WorldSize }; // this rank's rows of each batch
        loaderOptions.Validate();
        _progress.Message(setup.DataSummary);
        TrainerState? savedState = checkpoint?.ReadTrainerState();
        (LearningRateSchedule schedule, string scheduleLine) = RunSchedule.Plan(recipe, setup.TotalSteps, savedState);
        long baseline = RunPlan.MeasureRuntimeBaseline();
        using IRunEngine engine = IRunEngine.Create(setup, baseline, checkpoint, schedule, store, _progress.Message, ranks); // full fine-tuning or LoRA (model.adapter)
        LlamaModel model = engine.Model;
        DataPosition? position = null;
        long tokensSeen = 0;
        if (checkpoint is not null)
        {
            (TrainerState state, position) = engine.Restore(checkpoint, new PhaseProgress(_progress.Message, $"verifying and loading {Path.GetFileName(checkpoint.DirectoryPath)}"));
            tokensSeen = state.TokensSeen;
            int discarded = DiscardNewer && ranks.IsLeader ? store.DiscardAfter(checkpoint.Step) : 0;
            _progress.Message($"resuming from {checkpoint.DirectoryPath} (step {checkpoint.Step}){(discarded > 0 ? $"; --discard-newer deleted {discarded} newer checkpoint(s) of the abandoned run" : "")}");
        }
        if (setup.Chat is not null)
            _progress.Message($"chat template: {setup.Chat.Reason}");
        _progress.Message(scheduleLine);
        long startStep = checkpoint?.Step ?? 0;
        var loader = new DataLoader(setup.TrainData, loaderOptions, position);
        _progress.Message(engine.Description);
        RunIoFloor? ioFloor = engine.IoFloor;
        if (ioFloor is not null)
            _progress.Message($"I/O floor: {ioFloor.BytesPerSecond / 1e9:0.00} GB/s for reads and writes at once on {recipe.Offload.NvmeDir} ({ioFloor.Engine}), measured now at the step's mix");
        var totals = new RunStepTotals();
        double? accuracyBefore = checkpoint is null && ranks.IsLeader ? Accuracy(model, setup) : null;

        using TrainingMetricsLogger? logger = ranks.IsLeader ? TrainingMetricsLogger.Start(recipe, checkpoint?.Step) : null;
        using RunMetricsLog? metricsLog = ranks.IsLeader ? new RunMetricsLog(recipe.OutputDir) : null;
        string? lastCheckpoint = checkpoint?.DirectoryPath;
        double? evalLoss = null;
        double sessionSeconds = 0;
        long sessionTokens = 0, sessionPositions = 0;
        bool interrupted = false;
        long step = startStep;
        var batches = new Batch[recipe.Training.GradientAccumulationSteps];
        var sinceCheckpoint = Stopwatch.StartNew();
        double lastStepSeconds = 0;
        bool spillOverrunSaid = false;
        try
        {
            while (step < setup.TotalSteps)
            {
                for (int i = 0; i < batches.Length; i++)
                    batches[i] = loader.Next();
                // a checkpoint after this step takes the NVMe states as they are written: keep their CRCs as they go
                engine.RecordStateChecksums = CheckpointFollows(recipe, step + 1, setup.TotalSteps, sinceCheckpoint.Elapsed + TimeSpan.FromSeconds(lastStepSeconds));
                StepMetrics metrics = RankTotals(engine.Step(batches), ranks);
                totals.Add(metrics);
                lastStepSeconds = metrics.Seconds;
                step = metrics.Step;
                tokensSeen += metrics.TokenCount;
                sessionSeconds += metrics.Seconds;
                sessionTokens += metrics.TokenCount;
                sessionPositions += batches.Sum(b => (long)b.BatchSize * b.SequenceLength);
                metricsLog?.Append(metrics);
                bool last = step == setup.TotalSteps;
                if (step % recipe.Logging.LogEverySteps == 0 || step == 1 || last)
                    logger?.Log(step, Scalars(metrics));
                RunDivergence.Check(metrics, recipe, lastCheckpoint);
                if (metrics.UnspilledActivationByteCount > 0 && !spillOverrunSaid)
                {
                    spillOverrunSaid = true;
                    _progress.Message($"warning: step {step}: {metrics.UnspilledActivationByteCount / (double)(1L << 30):0.###} GiB of the layers' saved tensors did not fit the spill file sized from the plan's estimate and stayed in host memory; if host memory runs short, use training.recompute: always or lower batch_size or seq_len.");
                }
                _progress.Step(new RunProgressLine(step, setup.TotalSteps, metrics.Loss, metrics.LearningRate, metrics.TokensPerSecond,
                    (metrics.BytesRead + metrics.BytesWritten) / Math.Max(metrics.Seconds, 1e-9), ProcessMemory.ResidentByteCount(),
                    engine.Options.HostBudgetByteCount == long.MaxValue ? null : engine.Options.HostBudgetByteCount,
                    TimeSpan.FromSeconds(sessionSeconds / (step - startStep) * (setup.TotalSteps - step))));
                if (setup.EvalData is not null && recipe.Eval.EverySteps is int everyEval && (step % everyEval == 0 || last) && ranks.IsLeader)
                {
                    evalLoss = RunEvaluation.Loss(model, setup.EvalData, setup.LoaderOptions);
                    logger?.Log(step, MetricTags.EvalLoss, evalLoss.Value);
                    metricsLog?.AppendEval(step, evalLoss.Value);
                    _progress.Message($"step {step}: eval/loss {evalLoss:0.0000}");
                }
                interrupted = ranks.Any(cancel.IsCancellationRequested) && !last;
                // checkpoint.every_minutes reads each rank's clock: a checkpoint one rank is due for is every rank's
                if (last || interrupted || ranks.Any(CheckpointFollows(recipe, step, setup.TotalSteps, sinceCheckpoint.Elapsed)))
                {
                    RunSpaceCheck.CheckNextCheckpoint(recipe, engine.CheckpointSpace, lastCheckpoint);
                    var saving = Stopwatch.StartNew();
                    (lastCheckpoint, SavedStates states) = engine.Save(recipe, step, loader.Position, tokensSeen, TokenizerFolder(recipe),
                        new PhaseProgress(_progress.Message, $"checkpoint step_{step}"));
                    sinceCheckpoint.Restart();
                    _progress.Message($"step {step}: checkpoint {lastCheckpoint} in {saving.Elapsed.TotalSeconds:0.0} s; {RunCheckpoints.Describe(states)}");
                }
                if (interrupted)
                    break;
            }
        }
        catch
        {
            // the hparams dashboard shows the session as failed; the exception itself reaches the CLI
            _progress.EndLine();
            logger?.LogSessionEnd(false);
            throw;
        }
        _progress.EndLine();
        logger?.LogSessionEnd(!interrupted);
        SortedDictionary<long, double> losses = RunMetricsLog.ReadLosses(Path.Combine(recipe.OutputDir, RunMetricsLog.FileName));
        var (plotFile, plotError, evalCurve) = ranks.IsLeader ? DrawPlot(recipe.OutputDir) : (null, null, []);
        IReadOnlyList<double> rankPeaks = ranks.Gather(ProcessMemory.PeakResidentByteCount());
        return new RunResult
        {
            Step = step,
            TotalSteps = setup.TotalSteps,
            StartStep = startStep,
            Interrupted = interrupted,
            FirstLoss = losses.Count > 0 ? losses.First().Value : null,
            LastLoss = losses.Count > 0 ? losses.Last().Value : null,
            TokensPerSecond = sessionSeconds > 0 ? sessionTokens / sessionSeconds : 0,
            PositionsPerSecond = sessionSeconds > 0 ? sessionPositions / sessionSeconds : 0,
            PeakResidentByteCount = ProcessMemory.PeakResidentByteCount(),
            HostBudgetByteCount = engine.Options.HostBudgetByteCount == long.MaxValue ? null : engine.Options.HostBudgetByteCount,
            PoolReservedByteCount = engine.PoolReservedByteCount,
            PredictedHostPeakByteCount = engine.PredictedHostPeakByteCount,
            GradientMemory = engine.GradientMemory,
            Compute = compute,
            AccuracyBefore = accuracyBefore,
            AccuracyAfter = interrupted || !ranks.IsLeader ? null : Accuracy(model, setup),
            EvalLoss = evalLoss,
            LossCurve = losses.Values.ToList(),
            EvalLossCurve = evalCurve,
            PlotFile = plotFile,
            PlotError = plotError,
            TensorBoardFile = logger?.FilePath,
            MetricsFile = Path.Combine(recipe.OutputDir, RunMetricsLog.FileName),
            RankPeakResidentByteCounts = ranks.WorldSize > 1 ? rankPeaks.Select(p => (long)p).ToList() : [],
            LastCheckpoint = lastCheckpoint,
            CheckpointDirectory = recipe.Checkpoint.Dir,
            Steps = totals,
            ParameterCount = model.ParameterCount,
            PlannedStepSeconds = engine.Plan?.StepSeconds,
            PlannedTraffic = engine.Plan?.Traffic,
            IoFloor = ioFloor,
        };
    }

    /// <summary>
    /// The step as the leader logs it: bytes moved summed over the ranks, peak resident memory the largest rank's (the
    /// loss, norm and tokens are the global batch's on every rank already).
    /// </summary>
    private static StepMetrics RankTotals(StepMetrics metrics, RunRanks ranks)
    {
        if (ranks.WorldSize == 1)
            return metrics;
        Span<double> sums = [metrics.BytesRead, metrics.BytesWritten];
        ranks.Sum(sums);
        Span<double> peak = [metrics.PeakResidentByteCount];
        ranks.Max(peak);
        return metrics with { BytesRead = (long)sums[0], BytesWritten = (long)sums[1], PeakResidentByteCount = (long)peak[0] };
    }

    /// <summary>Whether a checkpoint is due after <paramref name="step"/>: the last step, checkpoint.every_steps, or checkpoint.every_minutes since the last one.</summary>
    private static bool CheckpointFollows(Recipe recipe, long step, long totalSteps, TimeSpan sinceCheckpoint) =>
        step == totalSteps
        || (recipe.Checkpoint.EverySteps is int every && step % every == 0)
        || (recipe.Checkpoint.EveryMinutes is double minutes && sinceCheckpoint.TotalMinutes >= minutes);

    /// <summary>
    /// libtorch's intra-op threads: fixed per machine (FINETUNE_TORCH_THREADS, else every logical core), so the same
    /// reductions are split the same way in the run and in its resume. Every core, because compute is what a CPU run
    /// is for: the CPU AdamW, CRC and I/O completions fit around libtorch once its OpenMP threads sleep instead of
    /// spinning while they wait (<see cref="FineTune.Torch.Native.OpenMpPolicy"/>); with libgomp's default spin, half
    /// the cores was the only safe choice (8x slower otherwise, measured). docs/benchmarks.md has the measurement.
    /// </summary>
    public static int TorchThreadCount() =>
        int.TryParse(Environment.GetEnvironmentVariable("FINETUNE_TORCH_THREADS"), out int threads) && threads > 0 ? threads : Math.Max(1, Environment.ProcessorCount);

    private static IEnumerable<KeyValuePair<string, double>> Scalars(StepMetrics m)
    {
        yield return new(MetricTags.TrainLoss, m.Loss);
        yield return new(MetricTags.TrainLearningRate, m.LearningRate);
        if (double.IsFinite(m.GradientNorm))
            yield return new(MetricTags.TrainGradNorm, m.GradientNorm);
        yield return new(MetricTags.TrainTokensPerSecond, m.TokensPerSecond);
        yield return new(MetricTags.HostPeakBytes, m.PeakResidentByteCount);
        yield return new(MetricTags.PoolInUseBytes, m.PoolPeakInUseByteCount);
        yield return new(MetricTags.ReadBytesPerSecond, m.Seconds > 0 ? m.BytesRead / m.Seconds : 0);
        yield return new(MetricTags.WriteBytesPerSecond, m.Seconds > 0 ? m.BytesWritten / m.Seconds : 0);
    }

    /// <summary>
    /// Writes OUTPUT_DIR/loss.png from the run's logs (the whole run, resumes included). A plot that cannot be drawn
    /// (no SkiaSharp native library on this platform, a full disk) costs the run nothing: the summary says why.
    /// </summary>
    private static (string? File, string? Error, IReadOnlyList<double> EvalCurve) DrawPlot(string outputDirectory)
    {
        RunHistory history = RunHistory.Read(outputDirectory);
        IReadOnlyList<double> evalCurve = history.Eval.Select(e => e.Loss).ToList();
        string file = Path.Combine(outputDirectory, LossPlot.FileName);
        try
        {
            LossPlot.Save([history], file);
            return (file, null, evalCurve);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or IOException or UnauthorizedAccessException)
        {
            return (null, e.Message, evalCurve);
        }
    }

    private static double? Accuracy(LlamaModel model, RunSetup setup) => setup.Recipe.Eval.TaskAccuracy && setup.Synthetic is var (task, records, template)
        ? SyntheticAccuracy.Measure(model, setup.Tokenizer, task, records, template, Math.Min(setup.Recipe.Dataset.SeqLen, model.Config.MaxPositionEmbeddings))
        : null;

    private static string? TokenizerFolder(Recipe recipe) =>
        recipe.Tokenizer.Path is string path ? (Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))) : null;
}
