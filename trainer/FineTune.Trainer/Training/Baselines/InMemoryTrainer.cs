using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Training.Baselines;

/// <summary>
/// The baseline a PyTorch user would run instead: the model's own tensors, gradients accumulating in .grad,
/// libtorch's AdamW (<see cref="InMemoryOptimizer"/>), nothing offloaded. With <c>recompute</c> it runs FineTune's
/// layer-by-layer schedule (<see cref="MicroBatchPass"/>, checkpoints kept as tensors), so it differs from the engine
/// only in where state lives; without, one autograd graph through the whole model per micro-batch (plain libtorch
/// eager). Same loss normalisation and loss scaling as the engine. Bench and test code: production trains through
/// <see cref="TrainingEngine"/>.
/// </summary>
public sealed class InMemoryTrainer : ITrainer
{
    private readonly LlamaModel _model;
    private readonly TrainingOptions _options;
    private readonly bool _recompute;
    private readonly InMemoryOptimizer _optimizer;
    private readonly LayerInputCheckpoints _checkpoints;
    private readonly MicroBatchPass _pass;

    public InMemoryTrainer(LlamaModel model, TrainingOptions options, bool recompute = true)
    {
        if (options.ParameterTier == ParameterTier.Nvme)
            throw new ArgumentException("parameter offload (ParameterTier.Nvme) belongs to the engine; the in-memory baseline keeps every tensor resident.", nameof(options));
        _model = model;
        _options = options;
        _recompute = recompute;
        LossScaler = options.LossScaler ?? (options.Precision == PrecisionMode.Float16 ? new DynamicLossScaler() : null);
        model.MakeResident();
        model.SetRequiresGrad(true);
        model.ClearGrads();
        _optimizer = new InMemoryOptimizer(model, options.AdamW);
        _checkpoints = new LayerInputCheckpoints(model.Layers.Count, null);
        _pass = new MicroBatchPass(model, model.Weights, _checkpoints, options.ActivationStagingBuffers);
    }

    public long StepCount { get; private set; }

    public DynamicLossScaler? LossScaler { get; }

    public bool OverlapsOptimizer => false;

    public (string States, string Activations, string Weights) Locations => ("memory (libtorch AdamW)", "memory (tensors)", "resident");

    public long PoolReservedByteCount => 0;

    public string UpdateStrategy => "libtorch AdamW after backward";

    public StepMetrics Step(IReadOnlyList<Batch> microBatches)
    {
        long tokenCount = microBatches.Sum(b => (long)b.TokenCount);
        long start = Stopwatch.GetTimestamp();
        double lossScale = LossScaler?.Scale ?? 1.0;
        double learningRate = _options.Schedule?.At(StepCount) ?? _options.AdamW.LearningRate;
        double gradientScale = lossScale / tokenCount > float.MaxValue ? double.PositiveInfinity : lossScale / tokenCount;
        double lossSum = 0;
        foreach (Batch batch in microBatches)
            lossSum += _recompute ? _pass.Run(batch, gradientScale, stageDone: null) : FullGraph(batch, gradientScale);
        long optimizerStart = Stopwatch.GetTimestamp();
        (bool skipped, double norm) = _optimizer.Step(learningRate, lossScale);
        double optimizerSeconds = Stopwatch.GetElapsedTime(optimizerStart).TotalSeconds;
        LossScaler?.Update(!skipped);
        StepCount++;
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return new StepMetrics
        {
            Step = StepCount, Loss = lossSum / tokenCount, GradientNorm = norm, LearningRate = learningRate, Skipped = skipped,
            LossScale = lossScale, TokenCount = tokenCount, Seconds = seconds, ComputeSeconds = seconds - optimizerSeconds,
            ReadWaitSeconds = 0, WriteWaitSeconds = 0, OptimizerSeconds = optimizerSeconds, BytesRead = 0, BytesWritten = 0,
            PoolReservedByteCount = 0, PoolPeakInUseByteCount = 0, PeakResidentByteCount = ProcessMemory.PeakResidentByteCount(),
        };
    }

    public void Dispose()
    {
        _checkpoints.Dispose();
        _optimizer.Dispose();
    }

    /// <summary>One autograd graph through the whole model; returns the token-loss sum.</summary>
    private double FullGraph(Batch batch, double gradientScale)
    {
        using var scope = TensorScope.Enter();
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        Tensor ids = FromArray(batch.InputIds, shape);       // (B, T) int64
        Tensor targets = FromArray(batch.Labels, shape);     // (B, T) int64, already shifted
        using (EnableGrad())
        {
            Tensor loss = CausalLmLoss.FromTargets(_model.Forward(ids), targets, Reduction.Sum);
            Backward([loss], [Full([], gradientScale, DType.Float32)]);
            return loss.Item<double>();
        }
    }
}
