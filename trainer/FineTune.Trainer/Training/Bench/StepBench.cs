using FineTune.Offload.Bench;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Bench;

/// <summary>
/// `finetune bench step`: the same seeded model trained on the same random batches three ways in one process —
/// in memory (libtorch AdamW, checkpoints as tensors), offloaded (optimizer states and every activation checkpoint
/// on NVMe) with the optimizer overlapping backward, and offloaded without overlap — timing the median step and
/// splitting it into compute / read waits / write waits / optimizer. The drive's sequential O_DIRECT bandwidth is
/// measured in the same run, so "the disk keeps up" can be judged: bytes per step / bandwidth vs the step time.
/// The process's peak RSS is reset between configurations through /proc/self/clear_refs (Linux) when allowed.
/// </summary>
public static class StepBench
{
    public static StepBenchResult Run(StepBenchOptions options, Action<string>? progress = null)
    {
        var config = new LlamaConfig
        {
            ModelType = "llama", VocabSize = options.VocabSize, HiddenSize = options.HiddenSize, IntermediateSize = options.IntermediateSize,
            LayerCount = options.LayerCount, HeadCount = options.HeadCount, KvHeadCount = options.HeadCount,
            HeadDim = options.HiddenSize / options.HeadCount, MaxPositionEmbeddings = Math.Max(2048, options.SequenceLength),
        };
        config.Validate("the bench model");
        int stepCount = options.WarmupSteps + options.TimedSteps;
        List<Batch[]> windows = RandomWindows(options, stepCount);
        long parameterCount;
        using (var probe = LlamaModel.Create(config, 1, DType.Float32, Device.Cpu))
            parameterCount = probe.ParameterCount;

        progress?.Invoke("measuring the drive's sequential O_DIRECT bandwidth");
        var (readRate, writeRate, engine) = SequentialBandwidth.Measure(options.NvmeDirectory, 256L << 20);
        var baseOptions = new TrainingOptions
        {
            MicroBatchSize = options.MicroBatchSize,
            SequenceLength = options.SequenceLength,
            AdamW = new() { LearningRate = 1e-4 },
            SubGroupElementCount = options.SubGroupElementCount,
            NvmeDirectory = options.NvmeDirectory,
        };
        bool resetWorked = true;
        StepBenchRun Measure(string name, TrainingOptions trainingOptions)
        {
            progress?.Invoke($"training {name}");
            resetWorked &= ResetPeakResident();
            long residentBefore = ProcessMemory.ResidentByteCount();
            using var model = LlamaModel.Create(config, 1, DType.Float32, Device.Cpu);
            using var trainer = new TrainingEngine(model, trainingOptions);
            var timed = new List<StepMetrics>();
            for (int s = 0; s < stepCount; s++)
            {
                StepMetrics m = trainer.Step(windows[s]);
                if (s >= options.WarmupSteps)
                    timed.Add(m);
            }
            StepMetrics median = timed.OrderBy(m => m.Seconds).ElementAt(timed.Count / 2);
            return new StepBenchRun(name, median.Seconds, median.TokensPerSecond, median.ComputeSeconds, median.ReadWaitSeconds,
                median.WriteWaitSeconds, median.OptimizerSeconds, median.BytesRead, median.BytesWritten, trainer.PoolReservedByteCount,
                ProcessMemory.PeakResidentByteCount(), residentBefore, timed.Select(m => m.Loss).ToList(),
                trainer.Optimizer?.StateLocation ?? "memory (libtorch AdamW)", trainer.ActivationLocation);
        }
        TrainingOptions offloaded = baseOptions with { OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1 };
        StepBenchRun offloadedRun = Measure("offloaded", offloaded with { OverlapOptimizerWithBackward = true });
        StepBenchRun inMemoryRun = Measure("in-memory", baseOptions with { Mode = TrainingMode.InMemory });
        StepBenchRun noOverlapRun = Measure("offloaded, no overlap", offloaded with { OverlapOptimizerWithBackward = false });
        return new StepBenchResult(parameterCount, windows[0].Sum(b => (long)b.TokenCount), readRate, writeRate, engine,
            inMemoryRun, offloadedRun, noOverlapRun, resetWorked);
    }

    /// <summary>Deterministic random token windows: labels are the next token of the same random stream (no masking).</summary>
    private static List<Batch[]> RandomWindows(StepBenchOptions options, int stepCount)
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
