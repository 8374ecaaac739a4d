using FineTune.Offload.Bench;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training.Baselines;

namespace FineTune.Trainer.Training.Bench;

/// <summary>
/// `finetune bench step`: the same seeded model trained on the same random batches, in one process, the way a
/// PyTorch user would (plain libtorch eager in memory: one autograd graph, libtorch's AdamW, all cores — the baseline
/// every ratio is against) and the ways FineTune can: in memory with its layer-by-layer recompute; offloaded
/// (optimizer states and every activation checkpoint on NVMe) with the update overlapped with backward; the same
/// without overlap; with clipping on, the update under the next forward and the synchronous one; and with the weights
/// on NVMe too. The median step is split into compute / read waits / write waits / optimizer on the step's thread. In
/// the same run: the drive's sequential O_DIRECT bandwidth (does the disk keep up?) and a GEMM of the model's MLP
/// shape on all cores (the CPU's limit, for MFU). Each configuration runs alone (VmHWM reset before it through
/// /proc/self/clear_refs when the kernel allows), so its peak RSS is its own.
/// </summary>
public static class StepBench
{
    public static StepBenchResult Run(StepBenchOptions options, Action<string>? progress = null)
    {
        LlamaConfig config = options.ModelConfig();
        DType dtype = options.BFloat16 ? DType.BFloat16 : DType.Float32;
        int stepCount = options.WarmupSteps + options.TimedSteps;
        List<Batch[]> windows = RandomWindows(options, stepCount);
        long parameterCount;
        using (var probe = LlamaModel.Create(config, 1, dtype, Device.Cpu))
            parameterCount = probe.ParameterCount;

        progress?.Invoke("measuring the drive's sequential O_DIRECT bandwidth");
        var (readRate, writeRate, engine) = SequentialBandwidth.Measure(options.NvmeDirectory, 256L << 20);
        progress?.Invoke("measuring the GEMM rate of the model's MLP shape");
        long rows = (long)options.MicroBatchSize * options.SequenceLength;
        double gemm = FineTune.Torch.Blas.GemmRate.Measure(dtype, rows, options.HiddenSize, options.IntermediateSize, minimumSeconds: 1.0).FlopsPerSecond;
        (string Name, TrainingOptions Options, TrainingMode Mode, bool Recompute)[] configurations = Configurations(options);

        // Each configuration alone, one after the other: peak RSS reset before it, its warm-up then its timed steps in
        // a row (an update deferred under the next forward overlaps its own next step, as in a run; it is settled before
        // the next configuration starts, so no configuration's work leaks into another's steps).
        bool resetWorked = true;
        var runs = new List<StepBenchRun>();
        foreach (var (name, trainingOptions, mode, recompute) in configurations)
        {
            progress?.Invoke($"{name}: {stepCount} steps");
            resetWorked &= ResetPeakResident();
            long before = ProcessMemory.ResidentByteCount();
            var timed = new List<StepMetrics>();
            using (var model = LlamaModel.Create(config, 1, dtype, Device.Cpu))
            using (ITrainer trainer = Trainers.Create(model, trainingOptions, mode, recompute))
            {
                for (int s = 0; s < stepCount; s++)
                {
                    StepMetrics m = trainer.Step(windows[s]);
                    if (s >= options.WarmupSteps)
                        timed.Add(m);
                }
                trainer.Settle();
                StepMetrics median = timed.OrderBy(m => m.Seconds).ElementAt(timed.Count / 2);
                runs.Add(new StepBenchRun(name, median.Seconds, median.TokensPerSecond, median.ComputeSeconds, median.ReadWaitSeconds,
                    median.WriteWaitSeconds, median.OptimizerSeconds, median.BytesRead, median.BytesWritten, median.Traffic, trainer.PoolReservedByteCount,
                    ProcessMemory.PeakResidentByteCount(), before, timed.Select(m => m.Loss).ToList(), timed.Select(m => m.GradientNorm).ToList(),
                    trainer.Locations.States, trainer.Locations.Activations, trainer.Locations.Weights, trainer.UpdateStrategy));
            }
        }
        return new StepBenchResult(parameterCount, windows[0].Sum(b => (long)b.TokenCount), readRate, writeRate, engine,
            ModelFlopsPerStep(config, windows[0].Sum(b => (long)b.BatchSize * b.SequenceLength), options.SequenceLength), gemm, runs, resetWorked);
    }

    private static (string, TrainingOptions, TrainingMode, bool)[] Configurations(StepBenchOptions options)
    {
        var baseOptions = new TrainingOptions
        {
            Precision = options.BFloat16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
            MicroBatchSize = options.MicroBatchSize,
            SequenceLength = options.SequenceLength,
            AccumulationSteps = options.AccumulationSteps,
            AdamW = new() { LearningRate = 1e-4 },
            SubGroupElementCount = options.SubGroupElementCount,
            NvmeDirectory = options.NvmeDirectory,
        };
        TrainingOptions offloaded = baseOptions with { OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1 };
        TrainingOptions clipped = offloaded with { AdamW = new() { LearningRate = 1e-4, MaxGradNorm = options.ClipGradNorm } };
        return
        [
            (StepBenchResult.Eager, baseOptions, TrainingMode.InMemory, false),
            (StepBenchResult.InMemoryName, baseOptions, TrainingMode.InMemory, true),
            (StepBenchResult.OffloadedName, offloaded with { OverlapOptimizerWithBackward = true }, TrainingMode.Offloaded, true),
            (StepBenchResult.KeptName, offloaded with { OverlapOptimizerWithBackward = true, KeptLayers = -1 }, TrainingMode.Offloaded, true),
            (StepBenchResult.SpilledName, offloaded with { OverlapOptimizerWithBackward = true, SpilledLayers = -1 }, TrainingMode.Offloaded, true),
            (StepBenchResult.NoOverlapName, offloaded with { OverlapOptimizerWithBackward = false }, TrainingMode.Offloaded, true),
            (StepBenchResult.ClipName, clipped with { OverlapOptimizerWithBackward = true }, TrainingMode.Offloaded, true),
            (StepBenchResult.ClipNoOverlapName, clipped with { OverlapOptimizerWithBackward = false }, TrainingMode.Offloaded, true),
            (StepBenchResult.ParamsName, offloaded with { OverlapOptimizerWithBackward = true, ParameterTier = ParameterTier.Nvme }, TrainingMode.Offloaded, true),
        ];
    }

    /// <summary>
    /// The FLOPs a step must do whatever the schedule (recompute not counted): 6 per matmul parameter per token
    /// (forward 2, backward 4: q, k, v, o, gate, up, down and the LM head; not the embedding lookup or the norms) plus
    /// attention, 12 x layers x T x C per token (PaLM's accounting).
    /// </summary>
    private static double ModelFlopsPerStep(LlamaConfig c, long tokens, int sequenceLength)
    {
        double perLayer = (double)c.HiddenSize * (c.QueryWidth + 2.0 * c.KeyValueWidth) + (double)c.QueryWidth * c.HiddenSize + 3.0 * c.HiddenSize * c.IntermediateSize;
        double matmul = c.LayerCount * perLayer + (double)c.VocabSize * c.HiddenSize;
        return tokens * (6.0 * matmul + 12.0 * c.LayerCount * sequenceLength * c.HiddenSize);
    }

    /// <summary>Deterministic random token windows: labels are the next token of the same random stream (no masking).</summary>
    internal static List<Batch[]> RandomWindows(StepBenchOptions options, int stepCount)
    {
        var random = new SplitMix64(20261122);
        int b = options.MicroBatchSize, t = options.SequenceLength;
        var windows = new List<Batch[]>();
        for (int s = 0; s < stepCount; s++)
        {
            var window = new Batch[options.AccumulationSteps];
            for (int m = 0; m < window.Length; m++)
            {
                var ids = new long[b * t];
                var labels = new long[b * t];
                for (int row = 0; row < b; row++)
                {
                    long next = (long)random.NextBelow((ulong)options.VocabSize);
                    for (int i = 0; i < t; i++)
                    {
                        ids[row * t + i] = next;
                        next = (long)random.NextBelow((ulong)options.VocabSize);
                        labels[row * t + i] = next;
                    }
                }
                window[m] = new Batch(b, t, ids, labels, new DataPosition(0, s, 0, 0, 0));
            }
            windows.Add(window);
        }
        return windows;
    }

    /// <summary>Resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs). False when not allowed.</summary>
    private static bool ResetPeakResident()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
