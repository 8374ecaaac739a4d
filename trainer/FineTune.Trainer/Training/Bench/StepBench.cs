using FineTune.Offload.Bench;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training.Baselines;

namespace FineTune.Trainer.Training.Bench;

/// <summary>
/// `finetune bench step`: the same seeded model trained on the same random batches three ways in one process -
/// in memory (libtorch AdamW, checkpoints as tensors), offloaded (optimizer states and every activation checkpoint
/// on NVMe) with the optimizer overlapping backward, offloaded without overlap, offloaded with the weights on NVMe too
/// (parameter offload, layer i+1 read while layer i computes), and in memory without recompute — timing the median step and
/// splitting it into compute / read waits / write waits / optimizer. The drive's sequential O_DIRECT bandwidth is
/// measured in the same run, so "the disk keeps up" can be judged: bytes per step / bandwidth vs the step time.
/// Peak RSS is measured first, each configuration alone through its warm-up steps, with VmHWM reset before it through
/// /proc/self/clear_refs (Linux) when allowed; then the timed steps of all run interleaved, engines all alive.
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
        TrainingOptions offloaded = baseOptions with { OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1 };
        (string Name, TrainingOptions Options, TrainingMode Mode, bool Recompute)[] configurations =
        [
            ("in-memory", baseOptions, TrainingMode.InMemory, true),
            ("offloaded", offloaded with { OverlapOptimizerWithBackward = true }, TrainingMode.Offloaded, true),
            ("offloaded, no overlap", offloaded with { OverlapOptimizerWithBackward = false }, TrainingMode.Offloaded, true),
            ("in-memory, no recompute", baseOptions, TrainingMode.InMemory, false),
            ("offloaded, params nvme", offloaded with { OverlapOptimizerWithBackward = true, ParameterTier = ParameterTier.Nvme }, TrainingMode.Offloaded, true),
        ];

        // Phase 1, memory: each configuration alone (peak RSS reset before it), through the warm-up steps.
        bool resetWorked = true;
        var memory = new List<(long Peak, long Before)>();
        foreach (var (name, trainingOptions, mode, recompute) in configurations)
        {
            progress?.Invoke($"peak memory of {name}");
            resetWorked &= ResetPeakResident();
            long before = ProcessMemory.ResidentByteCount();
            using (var model = LlamaModel.Create(config, 1, DType.Float32, Device.Cpu))
            using (ITrainer trainer = Trainers.Create(model, trainingOptions, mode, recompute))
                for (int s = 0; s < Math.Max(1, options.WarmupSteps); s++)
                    trainer.Step(windows[s]);
            memory.Add((ProcessMemory.PeakResidentByteCount(), before));
        }

        // Phase 2, time: all engines alive, their timed steps interleaved (rotating order), so load from
        // other processes on a shared machine hits every configuration alike.
        var models = configurations.Select(_ => LlamaModel.Create(config, 1, DType.Float32, Device.Cpu)).ToArray();
        var trainers = new List<ITrainer>();
        try
        {
            for (int c = 0; c < configurations.Length; c++)
                trainers.Add(Trainers.Create(models[c], configurations[c].Options, configurations[c].Mode, configurations[c].Recompute));
            var timed = configurations.Select(_ => new List<StepMetrics>()).ToArray();
            for (int s = 0; s < stepCount; s++)
            {
                progress?.Invoke($"step {s + 1} of {stepCount} in each configuration");
                for (int k = 0; k < configurations.Length; k++)
                {
                    int c = (s + k) % configurations.Length;
                    StepMetrics m = trainers[c].Step(windows[s]);
                    if (s >= options.WarmupSteps)
                        timed[c].Add(m);
                }
            }
            StepBenchRun Summarize(int c)
            {
                StepMetrics median = timed[c].OrderBy(m => m.Seconds).ElementAt(timed[c].Count / 2);
                ITrainer trainer = trainers[c];
                return new StepBenchRun(configurations[c].Name, median.Seconds, median.TokensPerSecond, median.ComputeSeconds, median.ReadWaitSeconds,
                    median.WriteWaitSeconds, median.OptimizerSeconds, median.BytesRead, median.BytesWritten, trainer.PoolReservedByteCount,
                    memory[c].Peak, memory[c].Before, timed[c].Select(m => m.Loss).ToList(),
                    trainer.Locations.States, trainer.Locations.Activations, trainer.Locations.Weights);
            }
            return new StepBenchResult(parameterCount, windows[0].Sum(b => (long)b.TokenCount), readRate, writeRate, engine,
                Summarize(0), Summarize(1), Summarize(2), Summarize(3), Summarize(4), resetWorked);
        }
        finally
        {
            foreach (ITrainer trainer in trainers)
                trainer.Dispose();
            foreach (LlamaModel model in models)
                model.Dispose();
        }
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
