using FineTune.IO;
using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training;

/// <summary>
/// The training step as a library: built from a <see cref="LlamaModel"/> and <see cref="TrainingOptions"/>, called
/// once per optimizer step with the micro-batches of one accumulation window, returning <see cref="StepMetrics"/>.
/// The caller owns the loop (data, logging, checkpoints); the engine owns the step:
///   forward layer by layer under no-grad, saving each decoder layer's input (<see cref="ActivationStore"/>);
///   loss and dLoss/dlogits at the top; backward layer by layer from the top, prefetching the next-lower
///   checkpoint while the current layer recomputes with grad; gradients moved into fp32 accumulators per stage;
///   after the last micro-batch, the optimizer step: overlapped with backward when neither clipping nor loss
///   scaling needs the global norm first, else with its first state reads prefetched during the last backward.
/// Loss: the sum of token cross-entropies over the window divided by the window's non-masked tokens (torchtune),
/// so accumulation over micro-batches equals one big batch.
/// Deterministic: the same model, seed, options and batches give the same losses and weights (fixed thread count).
/// Checkpoint state: <see cref="StepCount"/>, <see cref="LossScaler"/>, <see cref="SaveOptimizerState"/>.
/// The engine modifies the model in place (offloaded mode: its parameters become views into engine memory until
/// Dispose gives them back as ordinary tensors). With <see cref="ParameterTier.Nvme"/> the weights move to an NVMe
/// file and each stage's are brought in for its turn (<see cref="StreamedWeights"/>); outside a step the model's
/// tensors are then not resident, and model.Forward and LlamaExporter stream them the same way.
/// Not thread-safe: one Step at a time.
/// </summary>
public sealed partial class TrainingEngine : IDisposable
{
    private readonly LlamaModel _model;
    private readonly HostMemoryPool? _pool;
    private readonly ParameterBuffers? _parameters;
    private readonly PartitionedOptimizer? _optimizer;
    private readonly InMemoryOptimizer? _inMemory;
    private readonly LayerInputCheckpoints _checkpoints;
    private readonly WeightFile? _weightFile;
    private readonly WeightWriteBack? _writeBack;
    private readonly StreamedWeights? _streamed;
    private readonly IReadOnlyList<NamedParameter>[] _stageWeights;
    private readonly long?[] _stageFirstElement;
    private readonly long _totalElementCount;
    private bool _disposed;

    public TrainingEngine(LlamaModel model, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        _model = model;
        Options = options;
        CheckPrecision(model, options);
        if (!options.ActivationCheckpointing && options.Mode == TrainingMode.Offloaded)
            throw new ArgumentException("the offloaded mode always checkpoints activations; ActivationCheckpointing = false is for the in-memory baseline.", nameof(options));
        LossScaler = options.LossScaler ?? (options.Precision == PrecisionMode.Float16 ? new DynamicLossScaler() : null);
        (_stageFirstElement, _totalElementCount) = FlatOffsets(model);
        _stageWeights = model.Stages.Select(LlamaModel.StageWeights).ToArray();
        bool streamed = options.ParameterTier == ParameterTier.Nvme;
        if (streamed)
            CheckParameterOffload(model, options);
        model.SetRequiresGrad(true);
        model.ClearGrads();
        if (options.Mode == TrainingMode.InMemory)
        {
            model.MakeResident();
            model.ReleaseCheckpoint();
            model.SetRequiresGrad(true);
            _inMemory = new InMemoryOptimizer(model, options.AdamW);
            _checkpoints = new LayerInputCheckpoints(model.Layers.Count, null);
            return;
        }
        var activationOptions = ActivationOptions(model, options);
        ElementType weightType = ParameterBuffers.ElementTypeOf(model.DType);
        var optimizerOptions = OptimizerOptions(options);
        // rounded by the weight type whatever the tier, so a checkpoint's sub-groups match under either params tier
        long subGroup = PartitionedOptimizer.RoundSubGroupElementCount(optimizerOptions.SubGroupElementCount, weightType);
        optimizerOptions = optimizerOptions with { SubGroupElementCount = subGroup };
        var plan = new PoolPlan();
        ParameterBuffers.AddToPlan(plan, model, residentWeights: !streamed);
        if (streamed)
        {
            StreamedWeights.AddToPlan(plan, model.Config, weightType.ByteCount(), options.ParameterSlots);
            WeightWriteBack.AddToPlan(plan, Math.Min(subGroup, _totalElementCount), weightType);
        }
        if (activationOptions is not null)
            ActivationStore.AddToPlan(plan, activationOptions);
        IReadOnlyList<SubGroup> groups = SubGroup.Partition(model.Parameters.Select(p => p.Spec.ElementCount).ToList(), subGroup);
        long optimizerByteCount = PartitionedOptimizer.PlanPool(groups, subGroup, optimizerOptions).ReservedByteCount(PoolAllocatorKind.Exact);
        long engineByteCount = plan.ReservedByteCount(PoolAllocatorKind.Exact);
        PlannedHostByteCount = optimizerByteCount + engineByteCount;
        if (PlannedHostByteCount > options.HostBudgetByteCount)
            throw new UserErrorException(
                $"Training needs {Gib(PlannedHostByteCount)} of host buffers (weights, gradients and activations {Gib(engineByteCount)}, optimizer states {Gib(optimizerByteCount)}) " +
                $"but host_gb allows {Gib(options.HostBudgetByteCount)}; raise host_gb, put states, activations or params on NVMe, or shrink the sub-groups.");
        AlignedBuffer? scratch = null;
        try
        {
            _pool = HostMemoryPool.Create(plan, engineByteCount);
            if (streamed)
            {
                _weightFile = WeightFile.Create(options.NvmeDirectory, weightType, _totalElementCount, options.IoEngine);
                StreamedWeights.FillFile(_weightFile, model);
                _writeBack = new WeightWriteBack(_weightFile, _pool, WeightCounters);
                // the masters start from the file, one sub-group window at a time (a transient buffer, freed below)
                scratch = new AlignedBuffer(HostAlignment.RoundUpToPage(Math.Min(subGroup, _totalElementCount) * weightType.ByteCount()) + HostAlignment.PageByteCount);
                WeightFile file = _weightFile;
                AlignedBuffer window = scratch;
                optimizerOptions = optimizerOptions with
                {
                    WeightWriteBack = _writeBack,
                    InitialMasters = (group, master) => file.ReadAsFloat32(group.FirstElement, group.ElementCount, master, window),
                };
            }
            _parameters = new ParameterBuffers(_pool, model, residentWeights: !streamed);
            if (!streamed)
                model.Residency = null; // every parameter is a view into the pool now
            _checkpoints = new LayerInputCheckpoints(model.Layers.Count, activationOptions is null ? null : new ActivationStore(_pool, activationOptions));
            _optimizer = PartitionedOptimizer.Create(_parameters.HostParameters, optimizerOptions with { HostBudgetByteCount = optimizerByteCount });
            scratch?.Dispose();
            if (streamed)
                _streamed = new StreamedWeights(model, _weightFile!, _pool, WeightCounters, options.ParameterSlots);
            // the model's own tensors are gone (copied into the pool or the weight file): give their pages back
            model.ReleaseCheckpoint();
            ProcessMemory.ReturnFreedHeapMemory();
        }
        catch
        {
            scratch?.Dispose();
            _checkpoints?.Dispose();
            _optimizer?.Dispose();
            _parameters?.Dispose();
            _writeBack?.Dispose();
            _weightFile?.Dispose();
            _pool?.Dispose();
            throw;
        }
    }

    public TrainingOptions Options { get; }

    /// <summary>Steps taken (skipped ones included); the schedule's position. Restore it with <see cref="RestoreStepCount"/>.</summary>
    public long StepCount { get; private set; }

    /// <summary>The dynamic loss scaler (fp16, or when given in the options); null otherwise. Its state belongs in checkpoints.</summary>
    public DynamicLossScaler? LossScaler { get; }

    /// <summary>Host bytes the engine's pools reserve (offloaded mode; 0 in memory): weights, gradients, activations, optimizer.</summary>
    public long PlannedHostByteCount { get; }

    /// <summary>The offloaded optimizer (null in memory mode): its counters, tier and sub-groups.</summary>
    public PartitionedOptimizer? Optimizer => _optimizer;

    /// <summary>Parameter offload's counters (bytes read into slots and written back, waits); all zero without it.</summary>
    public WeightCounters WeightCounters { get; } = new();

    /// <summary>Where the low-precision weights live: "resident" or the NVMe file and engine.</summary>
    public string WeightLocation => _weightFile is null ? "resident" : $"{_weightFile.Description}, {Options.ParameterSlots} layer slots";

    /// <summary>Where checkpoints go: "memory (tensors)", "host" or "host N + nvme M (...)".</summary>
    public string ActivationLocation => _checkpoints.Store?.Description ?? "memory (tensors)";

    /// <summary>True when this configuration updates sub-groups during backward.</summary>
    public bool OverlapsOptimizer => _optimizer is not null && Options.OverlapOptimizerWithBackward && Options.AdamW.MaxGradNorm <= 0 && LossScaler is null;

    /// <summary>
    /// True when the update must wait for the global norm (clipping or loss scaling) but overlap is on: the first
    /// optimizer-state reads then start with the last backward, and the norm, unscale and clip follow it.
    /// </summary>
    public bool PrefetchesOptimizerStates => _optimizer is not null && Options.OverlapOptimizerWithBackward && !OverlapsOptimizer;

    /// <summary>Reserved bytes of the engine's pool plus the optimizer's pool, now.</summary>
    public long PoolReservedByteCount => (_pool?.ReservedByteCount ?? 0) + (_optimizer?.Pool.ReservedByteCount ?? 0);

    public long PoolPeakInUseByteCount => (_pool?.PeakInUseByteCount ?? 0) + (_optimizer?.Pool.PeakInUseByteCount ?? 0);

    /// <summary>Learning rate the next step will use.</summary>
    public double NextLearningRate => Options.Schedule?.At(StepCount) ?? Options.AdamW.LearningRate;

    /// <summary>Continues the schedule from a checkpoint taken after <paramref name="stepCount"/> steps.</summary>
    public void RestoreStepCount(long stepCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        StepCount = stepCount;
    }

    /// <summary>Writes fp32 master, m, v and the optimizer step to <paramref name="directory"/> (offloaded mode).</summary>
    public void SaveOptimizerState(string directory) => RequireOptimizer().SaveState(directory);

    /// <summary>Loads a saved optimizer state and rewrites the model's weights from its masters (offloaded mode).</summary>
    public void LoadOptimizerState(string directory)
    {
        try
        {
            RequireOptimizer().LoadState(directory);
        }
        finally
        {
            SettleWeights(); // the weight file was (perhaps partly) rewritten from the loaded masters
        }
    }

    public StepMetrics Step(Batch batch) => Step([batch]);

    /// <summary>
    /// Frees everything the engine holds and gives the model tensors that own their memory (with parameter offload:
    /// read back from the weight file, after the optimizer's pool is gone). Every part is released even when one
    /// fails; the first failure is rethrown.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        var failures = new List<Exception>();
        void Release(Action release)
        {
            try
            {
                release();
            }
            catch (Exception failure)
            {
                failures.Add(failure);
            }
        }
        Release(() => _checkpoints.Dispose());
        Release(() => _optimizer?.Dispose());
        Release(() => _writeBack?.Flush());
        Release(() =>
        {
            if (Options.RestoreWeightsOnDispose)
                _streamed?.RestoreOwned();
            else
                _streamed?.Abandon();
        });
        Release(() => _streamed?.Dispose());
        Release(() => _parameters?.Dispose());
        Release(() => _writeBack?.Dispose());
        Release(() => _weightFile?.Dispose());
        Release(() => _pool?.Dispose());
        Release(() => _inMemory?.Dispose());
        if (failures.Count > 0)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
    }

    /// <summary>
    /// After a failure while weights may have been changing (an update, a state load): waits for the weight writes in
    /// flight (their errors are the failure's consequence) and drops the resident copies, so the next read sees the
    /// file as it now is.
    /// </summary>
    private void SettleWeights()
    {
        try
        {
            _writeBack?.Flush();
        }
        catch (Exception)
        {
            // reported by the failure that brought us here
        }
        try
        {
            _streamed?.Invalidate();
        }
        catch (InvalidOperationException)
        {
            // a stage still held by the caller: its copy is dropped on the next Invalidate
        }
    }

    private PartitionedOptimizer RequireOptimizer() =>
        _optimizer ?? throw new NotSupportedException("The in-memory mode uses libtorch's AdamW, whose state FineTune does not save; use the offloaded mode for resumable runs.");

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

    private static void CheckParameterOffload(LlamaModel model, TrainingOptions options)
    {
        if (options.Mode != TrainingMode.Offloaded)
            throw new ArgumentException("parameter offload (ParameterTier.Nvme) belongs to the offloaded mode; the in-memory mode is the all-resident baseline.", nameof(options));
        if (!model.Device.IsCpu)
            throw new UserErrorException($"offload.params: nvme is implemented for CPU training only (this model is on {model.Device}); keep the parameters on the device.");
        if (options.ParameterSlots < 2)
            throw new UserErrorException($"parameter offload needs at least 2 layer slots (one computing, one being read), got {options.ParameterSlots}.");
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

    private static (long?[] StageFirst, long Total) FlatOffsets(LlamaModel model)
    {
        IReadOnlyDictionary<NamedParameter, long> offsets = ParameterBuffers.FlatOffsets(model);
        long total = model.ParameterCount;
        long?[] first = model.Stages.Select(s => s.Parameters.Count == 0 ? (long?)null : s.Parameters.Min(p => offsets[p])).ToArray();
        return (first, total);
    }

    private static ActivationStoreOptions? ActivationOptions(LlamaModel model, TrainingOptions options)
    {
        int layers = model.Layers.Count;
        if (layers == 0)
            return null;
        int elementBytes = model.DType == DType.Float32 ? 4 : 2;
        int nvme = options.NvmeActivationLayers < 0 ? layers : Math.Min(options.NvmeActivationLayers, layers);
        return new ActivationStoreOptions
        {
            CheckpointCount = layers,
            CheckpointByteCount = (long)options.MicroBatchSize * options.SequenceLength * model.Config.HiddenSize * elementBytes,
            NvmeCheckpointCount = nvme,
            NvmeDirectory = options.NvmeDirectory,
            StagingBufferCount = options.ActivationStagingBuffers,
            IoEngine = options.IoEngine,
        };
    }

    private static PartitionedOptimizerOptions OptimizerOptions(TrainingOptions options) => new()
    {
        AdamW = options.AdamW,
        SubGroupElementCount = options.SubGroupElementCount,
        Tier = options.OptimizerTier,
        NvmeDirectory = options.NvmeDirectory,
        IoEngine = options.IoEngine,
        MaxDegreeOfParallelism = options.OptimizerThreads,
    };

    private static string Gib(long byteCount) => byteCount == long.MaxValue ? "unlimited" : $"{byteCount / (double)(1L << 30):0.###} GiB";
}
