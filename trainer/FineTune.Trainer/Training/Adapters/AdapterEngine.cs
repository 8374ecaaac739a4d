using System.Diagnostics;
using FineTune.Offload.Activations;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Planning;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// LoRA training as a library: the frozen base in a read-only <see cref="ParameterStore"/> (resident, or on NVMe
/// streamed through the layer slots exactly as full fine-tuning streams its weights), filled once from a
/// <see cref="BaseWeights"/> source one tensor (or chunk) at a time; only the adapters and the trainable extras train
/// (<see cref="TrainedParameters"/>: resident, fp32 gradients, AdamW states in the engine's pool through
/// <see cref="PartitionedOptimizer"/>, or on NVMe). The base gets no master copy, no optimizer state, no gradient
/// buffer, no write-back, and its views do not require grad, so backward computes input gradients only; the
/// embedding's backward is skipped unless the embedding trains. Called once per optimizer step with the micro-batches
/// of one accumulation window (<see cref="Step(IReadOnlyList{Batch})"/>), as <see cref="TrainingEngine"/>: the same
/// <see cref="MicroBatchPass"/> data flow, loss normalisation (token sum over the window / its tokens), clipping (the
/// global norm over the trained tensors) and loss scaling. Dropout masks are drawn at position (step, micro-batch)
/// (<see cref="LoraAdapters.DropoutPosition"/>), so a resumed run draws the same ones.
/// While the engine lives, the model's weights come from the engine (<see cref="LlamaModel.LendWeights"/>), the
/// adapters are attached to it, and model.Forward under no-grad evaluates base + adapters. Dispose gives the model its
/// weights back as ordinary tensors (base plus trained extras) when <see cref="TrainingOptions.RestoreWeightsOnDispose"/>.
/// Deterministic for a fixed thread count; not thread-safe: one Step at a time.
/// </summary>
public sealed class AdapterEngine : IDisposable
{
    private readonly LlamaModel _model;
    private readonly LoraAdapters _adapters;
    private readonly HostMemoryPool _pool;
    private readonly NvmeDeviceSet _devices;
    private readonly ParameterStore _store;
    private readonly TrainedParameters _trained;
    private readonly PartitionedOptimizer _optimizer;
    private readonly LayerInputCheckpoints _checkpoints;
    private readonly AdapterWeights _weights;
    private readonly MicroBatchPass _pass;
    private bool _disposed;

    /// <param name="model">The base: resident, opened lazily, or a model whose weights <paramref name="baseWeights"/> supplies.</param>
    /// <param name="adapters">Adapters made for this model (fresh or loaded from a PEFT folder); attached here if they are not yet.</param>
    /// <param name="options">Shapes, tiers (ParameterTier: where the base lives), precision, AdamW, schedule.</param>
    /// <param name="baseWeights">Where the base is read from; null: from the model itself (<see cref="BaseWeights.Of"/>).</param>
    public AdapterEngine(LlamaModel model, LoraAdapters adapters, TrainingOptions options, BaseWeights? baseWeights = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(options);
        AdapterEngineChecks.Check(model, adapters, options);
        _model = model;
        _adapters = adapters;
        Options = options;
        LossScaler = options.LossScaler;
        Plan = AdapterPlan.For(model.Config, model.DType, adapters.Config, options);
        AdapterEngineChecks.CheckPlan(Plan, options);
        bool attached = adapters.AttachedTo is null;
        if (attached)
            adapters.AttachTo(model);
        try
        {
            _pool = HostMemoryPool.Create(Plan.Pool, options.HostBudgetByteCount);
            _devices = new NvmeDeviceSet(options.IoEngine);
            _store = new ParameterStore(Plan.Layout, Plan.Store, _pool, Plan.BaseOnNvme ? Drive("the LoRA base") : null);
            long fillStart = Stopwatch.GetTimestamp();
            BaseFingerprint = (baseWeights ?? BaseWeights.Of(model)).FillInto(_store, model);
            BaseFillSeconds = Stopwatch.GetElapsedTime(fillStart).TotalSeconds;
            var index = model.Parameters.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);
            _trained = new TrainedParameters(model, adapters, p => _store.ReadOwned(index[p]));
            _optimizer = PartitionedOptimizer.Create(_trained.HostParameters,
                Plan.Optimizer with { Device = Plan.StatesOnNvme ? Drive("adapter optimizer states") : null }, _pool);
            _checkpoints = new LayerInputCheckpoints(model.Layers.Count,
                Plan.Activations is null ? null : new ActivationStore(_pool, Plan.Activations, Plan.NvmeActivationLayers > 0 ? Drive("activations") : null));
        }
        catch
        {
            ReleaseParts();
            if (attached)
                adapters.Detach(); // a failed engine leaves the model and adapters as they were
            throw;
        }
        _weights = new AdapterWeights(_store, model, _trained);
        model.LendWeights(_weights);
        ProcessMemory.ReturnFreedHeapMemory(); // the model's own tensors, if it had any, are in the store now
        _pass = new MicroBatchPass(model, _weights, _checkpoints, options.ActivationStagingBuffers, embeddingBackward: _trained.TrainsEmbedding);
    }

    public TrainingOptions Options { get; }

    /// <summary>The plan the engine was built from (pool classes, base tier, trained parameters, NVMe traffic).</summary>
    public AdapterPlan Plan { get; }

    public LoraAdapters Adapters => _adapters;

    /// <summary>What the base was read from (folder and file CRC-32Cs, or a generated base's seed and CRC); null for <see cref="BaseWeights.Of"/>.</summary>
    public BaseFingerprint? BaseFingerprint { get; }

    /// <summary>Seconds spent filling the base store at construction (reading or generating, converting, writing to NVMe).</summary>
    public double BaseFillSeconds { get; }

    /// <summary>Steps taken (skipped ones included); the schedule's and the dropout masks' position.</summary>
    public long StepCount { get; private set; }

    /// <summary>The loss scaler given in the options, or null. Its state belongs in checkpoints.</summary>
    public DynamicLossScaler? LossScaler { get; }

    /// <summary>The optimizer over the trained parameters: its counters, tier and sub-groups.</summary>
    public PartitionedOptimizer Optimizer => _optimizer;

    /// <summary>Host bytes the engine holds by plan: its pool and the trained tensors.</summary>
    public long PlannedHostByteCount => Plan.HostByteCount;

    /// <summary>The base's traffic (bytes read into slots, hits, waits); zero with a resident base.</summary>
    public TransferCounters BaseCounters => _store.Counters;

    /// <summary>Where the base lives: "resident" or the NVMe file, engine and slot count.</summary>
    public string WeightLocation => _store.Description;

    public string ActivationLocation => _checkpoints.Store?.Description ?? "memory (tensors)";

    public long PoolReservedByteCount => _pool.ReservedByteCount;

    public long PoolPeakInUseByteCount => _pool.PeakInUseByteCount;

    /// <summary>Reserved bytes of one buffer class of the engine's pool (what the plan's figure for it must equal).</summary>
    public long ReservedByteCountOf(BufferKind kind) => _pool.ReservedByteCountOf(kind);

    /// <summary>Learning rate the next step will use.</summary>
    public double NextLearningRate => Options.Schedule?.At(StepCount) ?? Options.AdamW.LearningRate;

    /// <summary>Continues the schedule and the dropout masks from a checkpoint taken after <paramref name="stepCount"/> steps.</summary>
    public void RestoreStepCount(long stepCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        StepCount = stepCount;
    }

    /// <summary>
    /// One optimizer step over the micro-batches of one accumulation window (each at most MicroBatchSize x
    /// SequenceLength): forward and backward of each with its dropout masks, the trained gradients harvested, then
    /// AdamW over the trained parameters (norm, clip, unscale, skip on overflow).
    /// </summary>
    public StepMetrics Step(IReadOnlyList<Batch> microBatches)
    {
        long tokenCount = CheckStep(microBatches);
        long start = Stopwatch.GetTimestamp();
        Traffic before = Measure();
        double lossScale = LossScaler?.Scale ?? 1.0;
        double learningRate = NextLearningRate;
        // as TrainingEngine: a scale past fp32's range seeds an infinite gradient, which the overflow check skips
        double gradientScale = lossScale / tokenCount > float.MaxValue ? double.PositiveInfinity : lossScale / tokenCount;
        double lossSum = 0;
        try
        {
            for (int m = 0; m < microBatches.Count; m++)
            {
                _adapters.DropoutPosition = new LoraDropoutPosition(StepCount, m); // forward and its recompute draw the same masks
                lossSum += _pass.Run(microBatches[m], gradientScale, stageDone: null);
                _trained.Harvest(first: m == 0);
            }
            _checkpoints.Drain();
        }
        catch
        {
            _trained.ClearGrads();
            throw;
        }
        finally
        {
            _adapters.DropoutPosition = null; // evaluation between steps draws no masks
        }
        long optimizerStart = Stopwatch.GetTimestamp();
        _optimizer.LearningRate = learningRate;
        StepResult result = _optimizer.Step(lossScale);
        double optimizerSeconds = Stopwatch.GetElapsedTime(optimizerStart).TotalSeconds;
        LossScaler?.Update(!result.Skipped);
        StepCount++;
        _store.Prefetch(0); // the base never changes: the next step's first stage can be read now
        return Metrics(tokenCount, lossSum, result, learningRate, lossScale, start, optimizerSeconds, Measure() - before);
    }

    public StepMetrics Step(Batch batch) => Step([batch]);

    /// <summary>
    /// Writes the trained parameters' fp32 masters, Adam m and v and the optimizer step to <paramref name="directory"/>
    /// (a link to the NVMe swap file where the states live there and the filesystem allows it, else a copy);
    /// <paramref name="progress"/> gets the bytes so far.
    /// </summary>
    public SavedStates SaveOptimizerState(string directory, Action<long>? progress = null) => _optimizer.SaveState(directory, progress);

    /// <summary>Loads a saved optimizer state (any sub-group layout) and rewrites the adapters and extras from its masters.</summary>
    public void LoadOptimizerState(string directory, Action<long>? progress = null) => _optimizer.LoadState(directory, progress);

    /// <summary>Keep the CRC of each state the next step writes (NVMe states), so a checkpoint after it need not read them back.</summary>
    public bool RecordStateChecksums
    {
        get => _optimizer.RecordStateChecksums;
        set => _optimizer.RecordStateChecksums = value;
    }

    /// <summary>Writes the adapters (and trained extras) as a PEFT folder (float32) naming <paramref name="baseModelNameOrPath"/> as the base.</summary>
    public void SaveAdapter(string folder, string? baseModelNameOrPath) => PeftAdapterWriter.Write(_adapters, _model, folder, baseModelNameOrPath);

    /// <summary>Frees what the engine holds; every part is released even when one fails, the first failure rethrown.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        var failures = new List<Exception>();
        void Release(Action release)
        {
            try { release(); }
            catch (Exception failure) { failures.Add(failure); }
        }
        Release(() => _checkpoints.Dispose());
        Release(() => _optimizer.Dispose());
        Release(() => _model.ReturnWeights(Options.RestoreWeightsOnDispose ? OwnedWeights : null));
        Release(ReleaseParts);
        if (failures.Count > 0)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
    }

    /// <summary>
    /// Wall time split on the step's thread: waits for the base's slot reads, activation and state transfers; the
    /// optimizer beyond its waits; compute the rest (as TrainingEngine's synchronous update).
    /// </summary>
    private StepMetrics Metrics(long tokenCount, double lossSum, StepResult result, double learningRate, double lossScale,
        long start, double optimizerSeconds, Traffic step)
    {
        double readWait = step.Activations.ReadWaitSeconds + step.Base.ReadWaitSeconds + step.States.ReadWaitSeconds;
        double writeWait = step.Activations.WriteWaitSeconds + step.States.WriteWaitSeconds;
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double optimizerOnly = Math.Max(0, optimizerSeconds - step.States.ReadWaitSeconds - step.States.WriteWaitSeconds);
        TransferSnapshot all = step.States + step.Base + step.Activations;
        return new StepMetrics
        {
            Step = StepCount,
            Loss = lossSum / tokenCount,
            GradientNorm = result.GradientNorm,
            LearningRate = learningRate,
            Skipped = result.Skipped,
            LossScale = lossScale,
            TokenCount = tokenCount,
            Seconds = seconds,
            ComputeSeconds = Math.Max(0, seconds - readWait - writeWait - optimizerOnly),
            ReadWaitSeconds = readWait,
            WriteWaitSeconds = writeWait,
            OptimizerSeconds = optimizerOnly,
            BytesRead = all.BytesRead,
            BytesWritten = all.BytesWritten,
            Traffic = new NvmeTraffic(step.States.BytesRead, step.States.BytesWritten, step.Base.BytesRead, step.Base.BytesWritten,
                step.Activations.BytesRead, step.Activations.BytesWritten),
            PoolReservedByteCount = PoolReservedByteCount,
            PoolPeakInUseByteCount = PoolPeakInUseByteCount,
            PeakResidentByteCount = ProcessMemory.PeakResidentByteCount(),
        };
    }

    private Traffic Measure() => new(_optimizer.Counters.Snapshot(), _store.Counters.Snapshot(), _checkpoints.Store?.Counters.Snapshot() ?? default);

    /// <summary>The counters of the three stores that move bytes, at one moment.</summary>
    private readonly record struct Traffic(TransferSnapshot States, TransferSnapshot Base, TransferSnapshot Activations)
    {
        public static Traffic operator -(Traffic after, Traffic before) =>
            new(after.States - before.States, after.Base - before.Base, after.Activations - before.Activations);
    }

    /// <summary>A tensor owning <paramref name="parameter"/>'s weights now: its trained copy, or the base's.</summary>
    private Tensor OwnedWeights(NamedParameter parameter)
    {
        if (!_trained.TryGetExtra(parameter, out Tensor trained))
            return _store.ReadOwned(_weights.IndexOf(parameter));
        Tensor copy;
        using (TensorScope.Enter())
        using (FineTune.Torch.Torch.NoGrad())
            copy = trained.Detach().Clone().MoveToOuterScope();
        return TensorScope.Current?.Detach(copy) ?? copy;
    }

    private long CheckStep(IReadOnlyList<Batch> microBatches)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(microBatches);
        if (microBatches.Count == 0)
            throw new ArgumentException("a step needs at least one micro-batch.", nameof(microBatches));
        foreach (Batch batch in microBatches)
            if (batch.BatchSize > Options.MicroBatchSize || batch.SequenceLength > Options.SequenceLength)
                throw new ArgumentException($"micro-batch {batch.BatchSize}x{batch.SequenceLength} exceeds the planned {Options.MicroBatchSize}x{Options.SequenceLength}.", nameof(microBatches));
        if (_store.HeldStageCount > 0)
            throw new InvalidOperationException("A model.UseWeights handle is still open: dispose it before the next Step.");
        long tokenCount = microBatches.Sum(b => (long)b.TokenCount);
        if (tokenCount == 0)
            throw new ArgumentException("the micro-batches hold no target tokens (every label is -100).", nameof(microBatches));
        return tokenCount;
    }

    /// <summary>The stores, drives and pool, whichever were built (construction failure, or the end of Dispose).</summary>
    private void ReleaseParts()
    {
        var parts = new IDisposable?[] { _checkpoints, _optimizer, _trained, _store, _devices, _pool };
        Exception? first = null;
        foreach (IDisposable? part in parts)
        {
            try { part?.Dispose(); }
            catch (Exception failure) { first ??= failure; }
        }
        if (first is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }

    /// <summary>The drive of nvme_dir, shared by every store on it.</summary>
    private NvmeDevice Drive(string purpose) => _devices.For(Options.NvmeDirectory, purpose);
}
