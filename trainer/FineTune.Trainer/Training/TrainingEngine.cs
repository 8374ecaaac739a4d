using FineTune.IO;
using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.DataParallel;
using FineTune.Offload.Gradients;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Training.DataParallel;
using FineTune.Trainer.Training.Gradients;
using FineTune.Trainer.Training.Updates;

namespace FineTune.Trainer.Training;

/// <summary>
/// The training step as a library: built from a <see cref="LlamaModel"/> and <see cref="TrainingOptions"/>, called
/// once per optimizer step with the micro-batches of one accumulation window, returning <see cref="StepMetrics"/>.
/// The caller owns the loop (data, logging, checkpoints); the engine owns the step (TrainingEngine.Step.cs).
/// Construction follows the one <see cref="MemoryPlan"/>: one host pool sized from it, one drive object per nvme_dir
/// shared by every store, the <see cref="ParameterStore"/> (weights on the host or on NVMe, filled from the model one
/// tensor at a time), the gradient harvest (fp32 accumulators, or consumed by the overlapped update with no
/// per-parameter memory: <see cref="IGradientHarvest"/>), the activation store, the partitioned optimizer renting from the
/// same pool, and the update strategy (<see cref="IOptimizerUpdate"/>). Then the model lends its weights to the
/// engine (<see cref="LlamaModel.LendWeights"/>): while the engine holds it, model.Forward and the exporter read them
/// from the store; Dispose gives the model ordinary tensors back (or, with
/// <see cref="TrainingOptions.RestoreWeightsOnDispose"/> false, leaves them gone: a run has saved them).
/// Loss: the sum of token cross-entropies over the window divided by its non-masked tokens (torchtune).
/// Data parallel (<see cref="TrainingOptions.DataParallelGroup"/>): the engine is one rank, its optimizer holds its
/// ZeRO share of the sub-groups, and each step reduces and gathers through the group (<see cref="DataParallelRank"/>);
/// the loss is over the global batch's tokens, the same on every rank.
/// Deterministic: the same model, seed, options and batches give the same losses and weights (fixed thread count).
/// Not thread-safe: one Step at a time.
/// </summary>
public sealed partial class TrainingEngine : IDisposable
{
    private readonly LlamaModel _model;
    private readonly HostMemoryPool _pool;
    private readonly NvmeDeviceSet _devices;
    private readonly ParameterStore _store;
    private readonly IGradientHarvest _gradients;
    private readonly LayerInputCheckpoints _checkpoints;
    private readonly SavedTensorSpill? _spill;
    private readonly PartitionedOptimizer _optimizer;
    private readonly StoreWeights _weights;
    private readonly IOptimizerUpdate _update;
    private readonly MicroBatchPass _pass;
    private readonly DataParallelRank? _dataParallel;
    private bool _disposed;

    public TrainingEngine(LlamaModel model, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        _model = model;
        Options = options;
        CheckPrecision(model, options);
        LossScaler = options.LossScaler ?? (options.Precision == PrecisionMode.Float16 ? new DynamicLossScaler() : null);
        Plan = MemoryPlan.For(model.Config, model.DType, options);
        CheckPlan(model, options, Plan);
        _pool = HostMemoryPool.Create(Plan.Pool, options.HostBudgetByteCount);
        _devices = new NvmeDeviceSet(options.IoEngine);
        try
        {
            _store = new ParameterStore(Plan.Layout, Plan.Store, _pool, Plan.WeightsOnNvme ? Drive("weights") : null);
            // one parameter (a model opened lazily) or one chunk of one (a streamed creation) at a time
            long filled = 0, weightBytes = model.Parameters.Sum(p => p.Spec.ElementCount) * model.DType.ElementByteCount();
            for (int i = 0; i < model.Parameters.Count; i++)
                foreach (var (offset, values) in model.ReadChunks(model.Parameters[i]))
                {
                    _store.Fill(i, offset, values);
                    filled += values.NumElements * model.DType.ElementByteCount();
                    options.SetupProgress?.Invoke("weights", filled, weightBytes);
                }
            _store.CompleteFill();
            _gradients = Plan.Gradients is GradientTier.Consumed or GradientTier.Nvme
                ? new ConsumedGradients(model, Plan.Layout, Plan.OutstandingGradientBoundByteCount, Plan.PublishedByteCount,
                    Plan.TiedBlocks is { } tied ? new TiedGradientSpill(tied, Plan.TiedRowElementCount, model.DType, _pool.Rent(BufferKind.TiedGradientStaging), Drive("tied gradients")) : null,
                    Plan.Gradients == GradientTier.Nvme
                        ? new SpilledGradients(Plan.Layout, Plan.GradientPieces, _pool.RentAll(BufferKind.GradientSpillStaging), _pool.RentAll(BufferKind.GradientSpillReads), Drive("gradients"))
                        : null, holdFrom: OverlapsOptimizer && Plan.SplitElement is long hold ? hold : long.MaxValue, carryWeights: Plan.CarriesWeights, carryHeldWeights: Plan.CarriesHeldWeights)
                : new AccumulatedGradients(model, Plan.Layout, _pool);
            _checkpoints = new LayerInputCheckpoints(model.Layers.Count,
                Plan.Activations is null ? null : new ActivationStore(_pool, Plan.Activations, Plan.NvmeActivationLayers > 0 ? Drive("activations") : null));
            if (Plan.SpilledLayers > 0)
                _spill = new SavedTensorSpill(Drive("saved tensors").CreateFile("saved-tensors", Plan.SpillFileByteCount), Plan.SpilledLayers,
                    inFlightLimitByteCount: Plan.SpillInFlightByteCount);
            if (Plan.Partition is { } partition)
                _dataParallel = new DataParallelRank(options.DataParallelGroup!, partition, _pool, _store, _gradients.Address);
            _optimizer = PartitionedOptimizer.Create(HostParameters(model), Plan.Optimizer with
            {
                Device = Plan.StatesOnNvme ? Drive("optimizer states") : null,
                Gradients = _dataParallel?.Gradients ?? _gradients.Source,
                WeightWriteBack = _dataParallel?.Weights ?? _store.WriteBack,
                // parameter offload: the masters start from the weight file, one sub-group window at a time; a rank's
                // from the store, so creating the optimizer writes no weight (each rank starts with the same ones)
                InitialMasters = _dataParallel is { } rank ? rank.Weights.ReadMasters : Plan.WeightsOnNvme ? _store.ReadMasters : null,
                CreationProgress = options.SetupProgress is { } progress ? done => progress("optimizer states", done, Plan.StateByteCount) : null,
                StatesLoadedLater = options.StatesFromCheckpoint,
            }, _pool);
            _store.ReleaseScratch();
        }
        catch
        {
            ReleaseParts();
            throw;
        }
        _update = _dataParallel is not null ? new DataParallelUpdate(_optimizer, _dataParallel.Gradients)
            : OverlapsOptimizer && Plan.SplitElement is long split ? new SplitUpdate(_optimizer, Plan.Layout.ElementCount, split)
            : OverlapsOptimizer ? new OverlappedUpdate(_optimizer, Plan.Layout.ElementCount)
            : DefersOptimizer ? new DeferredUpdate(_optimizer)
            : PrefetchesOptimizerStates ? new PrefetchingUpdate(_optimizer)
            : new SynchronousUpdate(_optimizer);
        // a prefetch of weights an update under the forward has not written yet would read stale ones
        _store.PrefetchGate = range => _update.WeightsReady(range.First + range.Count);
        _weights = new StoreWeights(_store, model, _update.WaitForWeights);
        model.LendWeights(_weights);
        ProcessMemory.ReturnFreedHeapMemory(); // the model's own tensors are gone (copied into the store): give their pages back
        _pass = new MicroBatchPass(model, _weights, _checkpoints, options.ActivationStagingBuffers, keptLayers: Plan.KeptLayers, spill: _spill, deferTiedHead: Plan.DefersTiedHeadGradient);
    }

    public TrainingOptions Options { get; }

    /// <summary>The memory plan the engine was built from (pool classes, layout, stores, NVMe traffic).</summary>
    public MemoryPlan Plan { get; }

    /// <summary>Steps taken (skipped ones included); the schedule's position. Restore it with <see cref="RestoreStepCount"/>.</summary>
    public long StepCount { get; private set; }

    /// <summary>The dynamic loss scaler (fp16, or when given in the options); null otherwise. Its state belongs in checkpoints.</summary>
    public DynamicLossScaler? LossScaler { get; }

    /// <summary>Host bytes the engine's pool reserves: weights, gradients, activations, optimizer (the plan's figure).</summary>
    public long PlannedHostByteCount => Plan.PoolByteCount;

    /// <summary>The partitioned optimizer: its counters, tier and sub-groups.</summary>
    public PartitionedOptimizer Optimizer => _optimizer;

    /// <summary>The weights' traffic (bytes read into slots and written back, waits); all zero with resident weights.</summary>
    public TransferCounters WeightCounters => _store.Counters;

    /// <summary>Where the low-precision weights live: "resident" or the NVMe file and engine.</summary>
    public string WeightLocation => _store.Description;

    /// <summary>Where checkpoints go: "host" or "host N + nvme M (...)".</summary>
    public string ActivationLocation => _spill is { } spill
        ? $"graphs: {Plan.KeptLayers} in memory + {Plan.SpilledLayers} with saved tensors on {spill.Description}" + (_checkpoints.Store is { } store ? $"; recomputed inputs: {store.Description}" : "")
        : _checkpoints.Store?.Description ?? "memory (tensors)";

    /// <summary>Rank and world size of this engine's data-parallel group ((0, 1) for one process).</summary>
    public (int Rank, int WorldSize) DataParallelRank => _dataParallel is { } dp ? (dp.Group.Rank, dp.Group.WorldSize) : (0, 1);

    /// <summary>Seconds and bytes this rank spent in collectives (reduce-scatter, all-gather, all-reduce); null for one process.</summary>
    public CollectiveCounters? Collectives => _dataParallel?.Counters;

    /// <summary>True when this configuration updates sub-groups during backward.</summary>
    public bool OverlapsOptimizer => Options.OverlapOptimizerWithBackward && Options.AdamW.MaxGradNorm <= 0 && LossScaler is null && Plan.Partition is null;

    /// <summary>
    /// True when the update must wait for the global norm (clipping or loss scaling) and is decided after backward but
    /// applied under the next step's forward, stage by stage (<see cref="TrainingOptions.DeferUpdateToNextForward"/>).
    /// </summary>
    public bool DefersOptimizer => Options.OverlapOptimizerWithBackward && !OverlapsOptimizer && Options.DeferUpdateToNextForward && Plan.Partition is null;

    /// <summary>
    /// True when the update must wait for the global norm (clipping or loss scaling), is not deferred, but overlap is
    /// on: the first optimizer-state reads then start with the last backward, and the norm, unscale and clip follow it.
    /// </summary>
    public bool PrefetchesOptimizerStates => Options.OverlapOptimizerWithBackward && !OverlapsOptimizer && !Options.DeferUpdateToNextForward && Plan.Partition is null;

    /// <summary>How the optimizer runs relative to backward ("synchronous", "overlapped with backward", ...).</summary>
    public string UpdateStrategy => _update.Name;

    /// <summary>Where gradients go between backward and the optimizer.</summary>
    public GradientTier GradientTier => _gradients.Tier;

    /// <summary>Consumed gradients: the most gradient bytes alive at once so far (the plan bounds it); 0 with accumulators.</summary>
    public long PeakConsumedGradientByteCount => (_gradients as ConsumedGradients)?.PeakOutstandingByteCount ?? 0;

    /// <summary>Reserved bytes of the engine's pool, now.</summary>
    public long PoolReservedByteCount => _pool.ReservedByteCount;

    /// <summary>Reserved bytes of one buffer class of the engine's pool (what the plan's figure for it must equal).</summary>
    public long ReservedByteCountOf(BufferKind kind) => _pool.ReservedByteCountOf(kind);

    public long PoolPeakInUseByteCount => _pool.PeakInUseByteCount;

    /// <summary>Learning rate the next step will use.</summary>
    public double NextLearningRate => Options.Schedule?.At(StepCount) ?? Options.AdamW.LearningRate;

    /// <summary>Continues the schedule from a checkpoint taken after <paramref name="stepCount"/> steps.</summary>
    public void RestoreStepCount(long stepCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        StepCount = stepCount;
    }

    /// <summary>
    /// Waits until the last step's update is in place: with <see cref="DefersOptimizer"/> it otherwise finishes under
    /// the next step's forward. Reading the weights through the model, saving or loading state, and Dispose wait by
    /// themselves; call this before reading the engine's counters or the optimizer directly.
    /// </summary>
    public void Settle() => _update.Settle();

    /// <summary>
    /// Writes fp32 master, m, v and the optimizer step to <paramref name="directory"/> (after an update still running):
    /// a link to the NVMe swap file where the filesystem allows it, else a copy (<see cref="SavedStates"/> says which);
    /// <paramref name="progress"/> gets the bytes read or copied so far. A data-parallel rank writes its share into
    /// directory/rank-R/ (every rank into the same directory; <see cref="LoadOptimizerState"/> reads all of them).
    /// </summary>
    public SavedStates SaveOptimizerState(string directory, Action<long>? progress = null)
    {
        _update.Settle();
        return _optimizer.SaveState(_dataParallel?.StateFolder(directory) ?? directory, progress);
    }

    /// <summary>
    /// Keep the CRC of each optimizer state the next step writes, so a checkpoint after it that links the swap file
    /// need not read the states back (a run turns this on before the steps a checkpoint follows).
    /// </summary>
    public bool RecordStateChecksums
    {
        get => _optimizer.RecordStateChecksums;
        set => _optimizer.RecordStateChecksums = value;
    }

    /// <summary>
    /// Loads a saved optimizer state (any sub-group layout, saved by any number of ranks) and rewrites the model's
    /// weights from its masters; <paramref name="progress"/> gets the bytes read so far. Data parallel: every rank
    /// calls it together (the weights are gathered from the owners). Residual masters (<see cref="MemoryPlan.MasterEncoding"/>)
    /// are half of each master: the engine's model must hold the weights saved with them (a checkpoint's model/).
    /// </summary>
    public void LoadOptimizerState(string directory, Action<long>? progress = null)
    {
        try
        {
            _update.Settle();
            _optimizer.LoadState(directory, progress);
        }
        finally
        {
            SettleWeights(); // the weights were (perhaps partly) rewritten from the loaded masters
        }
    }

    /// <summary>
    /// Frees everything the engine holds and gives the model tensors that own their memory (read back from the
    /// store after the optimizer's buffers are freed). Every part is released even when one fails; the first
    /// failure is rethrown.
    /// </summary>
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
        Release(() => _update.Settle());
        Release(() => _checkpoints.Dispose());
        Release(() => _optimizer.Dispose());
        Release(() => _store.WriteBack?.Flush());
        Release(() => _pool.Trim([BufferKind.OptimizerStates, BufferKind.OptimizerTailStates, BufferKind.ActivationCheckpoints, BufferKind.ActivationStaging]));
        Release(() => _model.ReturnWeights(Options.RestoreWeightsOnDispose ? p => _store.ReadOwned(_weights.IndexOf(p)) : null));
        Release(ReleaseParts);
        if (failures.Count > 0)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
    }

    /// <summary>The stores, drives and pool, whichever were built (construction failure, or the end of Dispose).</summary>
    private void ReleaseParts()
    {
        // after a collective failed, the backend may still write into the stripe buffers until it gives up: their pool
        // stays (the process is ending with the group's error), as ProcessGroup asks
        bool keepPool = _dataParallel?.Group.IsBroken == true;
        var parts = new IDisposable?[] { _checkpoints, _spill, _optimizer, keepPool ? null : _dataParallel, _store, _gradients, _devices, keepPool ? null : _pool };
        Exception? first = null;
        foreach (IDisposable? part in parts)
        {
            try { part?.Dispose(); }
            catch (Exception failure) { first ??= failure; }
        }
        if (first is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }

    /// <summary>The drive of nvme_dir, shared by every store on it (opened by the first).</summary>
    private NvmeDevice Drive(string purpose) => _devices.For(Options.NvmeDirectory, purpose);

    /// <summary>Each parameter as the optimizer sees it: its weights in the store (0 on NVMe: the write-back) and its fp32 accumulator.</summary>
    private List<HostParameter> HostParameters(LlamaModel model)
    {
        ElementType weightType = Plan.Layout.WeightType;
        return model.Parameters.Select((p, i) => new HostParameter(p.Name, p.Spec.ElementCount, _store.WeightAddress(i), weightType, _gradients.Address(i), ElementType.Float32)).ToList();
    }

    /// <summary>
    /// After a failure while weights may have been changing (an update, a state load): waits for the weight writes in
    /// flight (their errors are the failure's consequence) and drops the resident copies, so the next read sees the
    /// file as it now is.
    /// </summary>
    private void SettleWeights()
    {
        try { _update.Settle(); }
        catch (Exception) { } // reported by the failure that brought us here
        try { _store.WriteBack?.Flush(); }
        catch (Exception) { } // reported by the failure that brought us here
        try { _store.Invalidate(); }
        catch (InvalidOperationException) { } // a stage still held by the caller: its copy is dropped on the next Invalidate
    }

    private static void CheckPrecision(LlamaModel model, TrainingOptions options)
    {
        DType expected = options.Precision switch
        {
            PrecisionMode.Float32 => DType.Float32,
            PrecisionMode.BFloat16 => DType.BFloat16,
            _ => DType.Float16,
        };
        if (model.DType != expected)
            throw new UserErrorException($"precision {options.Precision} needs the model in {expected}, but it was loaded as {model.DType}; load it with that dtype or change precision.");
        if (options.Precision == PrecisionMode.Float16 && model.Device.Type == DeviceType.Cpu && !HalfMatmulWorksOnCpu())
            throw new UserErrorException($"precision fp16 is not supported on the CPU by this libtorch ({FineTune.Torch.Torch.LibTorchVersion}): its CPU matmul has no float16 kernel; use bf16 or fp32 on CPU, fp16 on CUDA.");
    }

    /// <summary>Refusals before anything is allocated: a model that is not the plan's, parameter offload off the CPU, a pool over host_gb.</summary>
    private static void CheckPlan(LlamaModel model, TrainingOptions options, MemoryPlan plan)
    {
        IReadOnlyList<LayoutParameter> planned = plan.Layout.Parameters;
        if (planned.Count != model.Parameters.Count || planned.Where((p, i) => p.Name != model.Parameters[i].Name).Any())
            throw new ArgumentException("The model's parameters are not those of its config's layout.", nameof(model));
        if (plan.WeightsOnNvme && !model.Device.IsCpu)
            throw new UserErrorException($"offload.params: nvme is implemented for CPU training only (this model is on {model.Device}); keep the parameters on the device.");
        if (plan.SpilledLayers > 0 && !model.Device.IsCpu)
            throw new UserErrorException($"training.recompute: spill captures CPU allocations, and this model is on {model.Device} (its graphs' tensors live in device memory); use recompute auto or always.");
        if (plan.WeightsOnNvme && options.ParameterSlots < 2)
            throw new UserErrorException($"parameter offload needs at least 2 layer slots (one computing, one being read), got {options.ParameterSlots}.");
        long optimizer = plan.OptimizerPoolByteCount, total = plan.PoolByteCount;
        if (total > options.HostBudgetByteCount)
            throw new UserErrorException(
                $"Training needs {Gib(total)} of host buffers (weights, gradients and activations {Gib(total - optimizer)}, optimizer states {Gib(optimizer)}) " +
                $"but host_gb allows {Gib(options.HostBudgetByteCount)}; raise host_gb, put states, activations or params on NVMe, or shrink the sub-groups.");
    }

    private static bool HalfMatmulWorksOnCpu()
    {
        using var scope = TensorScope.Enter();
        try
        {
            Tensor a = FineTune.Torch.Torch.Ones([2, 2], DType.Float16);
            FineTune.Torch.Torch.Linear(a, a);
            return true;
        }
        catch (TorchException)
        {
            return false;
        }
    }

    private static string Gib(long byteCount) => byteCount == long.MaxValue ? "unlimited" : $"{byteCount / (double)(1L << 30):0.###} GiB";
}
