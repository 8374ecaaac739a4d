using FineTune.Offload.Bench;
using FineTune.Offload.Memory;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// `finetune bench lora`: LoRA over a base far larger than host memory. The drive's sequential O_DIRECT read
/// bandwidth is measured first (SequentialBandwidth, the swap's own engine); then a random-init bf16 Llama of the
/// given shape is generated chunk by chunk straight into the engine's NVMe store (<see cref="BaseWeights.Generated"/>,
/// never whole in memory), adapters are attached and a few steps run on random tokens, the base streaming through
/// the layer slots; the drive is measured again once the base file is gone (a shared drive's rate moves). It reports
/// tokens/s next to the base-read floor (base bytes read per step / the faster of the two read rates: no step can be
/// faster), the process's peak resident memory (VmHWM) next to the engine's plan and the
/// machine's memory, and the bytes the base would need in memory, the in-memory alternative. The base file is
/// deleted when the engine goes.
/// </summary>
public static class AdapterBench
{
    public static AdapterBenchResult Run(AdapterBenchOptions o, Action<string>? progress = null)
    {
        var config = new LlamaConfig
        {
            ModelType = "llama", VocabSize = o.VocabSize, HiddenSize = o.HiddenSize, IntermediateSize = o.IntermediateSize,
            LayerCount = o.LayerCount, HeadCount = o.HeadCount, KvHeadCount = o.KvHeadCount, HeadDim = o.HiddenSize / o.HeadCount,
            MaxPositionEmbeddings = Math.Max(2048, o.SequenceLength),
        };
        config.Validate("the bench model");
        progress?.Invoke($"measuring the drive's sequential O_DIRECT bandwidth ({o.BandwidthTestByteCount / (double)(1L << 30):0.#} GiB)");
        var (readRate, writeRate, engineName) = SequentialBandwidth.Measure(o.NvmeDirectory, o.BandwidthTestByteCount);
        var lora = new LoraConfig { Rank = o.Rank, Alpha = 2 * o.Rank, TargetModules = o.TargetModules };
        var options = new TrainingOptions
        {
            Precision = PrecisionMode.BFloat16,
            MicroBatchSize = o.MicroBatchSize,
            SequenceLength = o.SequenceLength,
            AdamW = new() { LearningRate = 1e-4 },
            ParameterTier = ParameterTier.Nvme,
            ParameterSlots = o.ParameterSlots,
            NvmeDirectory = o.NvmeDirectory,
            RestoreWeightsOnDispose = false,
        };
        long before = ProcessMemory.ResidentByteCount();
        var (total, available) = MachineMemory();
        using var scope = TensorScope.Enter();
        using LlamaModel model = LlamaModel.CreateStreamed(config, o.Seed, DType.BFloat16, Device.Cpu);
        using LoraAdapters adapters = LoraAdapters.Create(model, lora, o.Seed);
        long baseBytes = model.ParameterCount * 2;
        progress?.Invoke($"generating the {baseBytes / 1e9:0.0} GB bf16 base into {o.NvmeDirectory}, one chunk at a time");
        using var engine = new AdapterEngine(model, adapters, options, BaseWeights.Generated(o.Seed));
        var steps = new List<StepMetrics>();
        var random = new SplitMix64((ulong)o.Seed);
        for (int s = 0; s < o.Steps; s++)
        {
            progress?.Invoke($"step {s + 1} of {o.Steps}");
            steps.Add(engine.Step(RandomBatch(o, ref random)));
        }
        long peak = ProcessMemory.PeakResidentByteCount();
        (long trained, double fill, long planned, string location) = (engine.Plan.TrainedElementCount, engine.BaseFillSeconds, engine.PlannedHostByteCount, engine.WeightLocation);
        engine.Dispose(); // deletes the base file before the second measurement
        progress?.Invoke("measuring the drive again");
        var (readAfter, _, _) = SequentialBandwidth.Measure(o.NvmeDirectory, o.BandwidthTestByteCount);
        return new AdapterBenchResult
        {
            BaseParameterCount = model.ParameterCount,
            BaseByteCount = baseBytes,
            TrainedParameterCount = trained,
            ReadBytesPerSecond = Math.Max(readRate, readAfter),
            ReadBytesPerSecondBefore = readRate,
            ReadBytesPerSecondAfter = readAfter,
            WriteBytesPerSecond = writeRate,
            BandwidthEngine = engineName,
            FillSeconds = fill,
            Steps = steps,
            PlannedHostByteCount = planned,
            PeakResidentByteCount = peak,
            ResidentBeforeEngineByteCount = before,
            MemoryTotalByteCount = total,
            MemoryAvailableByteCount = available,
            BaseLocation = location,
        };
    }

    /// <summary>Random tokens, each label the next token of the same stream (no masking).</summary>
    private static Batch RandomBatch(AdapterBenchOptions o, ref SplitMix64 random)
    {
        int b = o.MicroBatchSize, t = o.SequenceLength;
        var ids = new long[b * t];
        var labels = new long[b * t];
        for (int row = 0; row < b; row++)
        {
            long next = (long)random.NextBelow((ulong)o.VocabSize);
            for (int i = 0; i < t; i++)
            {
                ids[row * t + i] = next;
                next = (long)random.NextBelow((ulong)o.VocabSize);
                labels[row * t + i] = next;
            }
        }
        return new Batch(b, t, ids, labels, new DataPosition(0, 0, 0, 0, 0));
    }

    /// <summary>MemTotal and MemAvailable from /proc/meminfo (0 where unreadable).</summary>
    private static (long Total, long Available) MachineMemory()
    {
        long total = 0, available = 0;
        try
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && long.TryParse(parts[1], out long kib))
                {
                    if (parts[0] == "MemTotal:")
                        total = kib * 1024;
                    else if (parts[0] == "MemAvailable:")
                        available = kib * 1024;
                }
            }
        }
        catch (IOException) { }
        return (total, available);
    }
}
