using System.CommandLine;
using FineTune.Trainer.Training.Adapters;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune bench lora`: LoRA over a random-init bf16 base generated onto NVMe (it can be far larger than host
/// memory), a few steps; tokens/s next to the base-read floor measured on the same drive, peak RSS next to the
/// plan and the machine's memory (logic in <see cref="AdapterBench"/>).
/// </summary>
internal static class BenchLoraCommand
{
    public static Command Create()
    {
        var nvme = new Option<string>("--nvme") { Description = "Directory on the drive for the generated base (needs its size free, plus the bandwidth test).", Required = true };
        var layers = new Option<int>("--layers") { Description = "Decoder layers.", DefaultValueFactory = _ => 4 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden size (C).", DefaultValueFactory = _ => 4096 };
        var intermediate = new Option<int>("--intermediate") { Description = "MLP intermediate size.", DefaultValueFactory = _ => 11008 };
        var heads = new Option<int>("--heads") { Description = "Attention heads (as many KV heads).", DefaultValueFactory = _ => 32 };
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size.", DefaultValueFactory = _ => 32000 };
        var rank = new Option<int>("--rank") { Description = "LoRA rank (alpha = 2 rank).", DefaultValueFactory = _ => 8 };
        var targets = new Option<string>("--targets") { Description = "Adapted projections, comma-separated (or all-linear).", DefaultValueFactory = _ => "q_proj,v_proj" };
        var batch = new Option<int>("--batch") { Description = "Rows per step.", DefaultValueFactory = _ => 1 };
        var seq = new Option<int>("--seq") { Description = "Tokens per row.", DefaultValueFactory = _ => 16 };
        var steps = new Option<int>("--steps") { Description = "Steps measured.", DefaultValueFactory = _ => 3 };
        var slots = new Option<int>("--slots") { Description = "Layer slots of the streamed base.", DefaultValueFactory = _ => 3 };
        var bandwidth = new Option<double>("--bandwidth-gib") { Description = "GiB written and read back to measure the drive.", DefaultValueFactory = _ => 4 };
        var command = new Command("lora", "LoRA over a random bf16 base generated onto NVMe (larger than memory if you like): tokens/s vs the base-read floor, peak RSS vs the plan.");
        foreach (Option option in new Option[] { nvme, layers, hidden, intermediate, heads, vocab, rank, targets, batch, seq, steps, slots, bandwidth })
            command.Options.Add(option);
        command.SetAction(parsed =>
        {
            string directory = parsed.GetValue(nvme)!;
            if (!Directory.Exists(directory))
                throw new UserErrorException($"--nvme {directory} does not exist; give an existing directory on the drive to test.");
            if (parsed.GetValue(steps) < 1 || parsed.GetValue(bandwidth) <= 0)
                throw new UserErrorException("--steps must be at least 1 and --bandwidth-gib positive.");
            var options = new AdapterBenchOptions
            {
                NvmeDirectory = directory,
                LayerCount = parsed.GetValue(layers),
                HiddenSize = parsed.GetValue(hidden),
                IntermediateSize = parsed.GetValue(intermediate),
                HeadCount = parsed.GetValue(heads),
                KvHeadCount = parsed.GetValue(heads),
                VocabSize = parsed.GetValue(vocab),
                Rank = parsed.GetValue(rank),
                TargetModules = parsed.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                MicroBatchSize = parsed.GetValue(batch),
                SequenceLength = parsed.GetValue(seq),
                Steps = parsed.GetValue(steps),
                ParameterSlots = parsed.GetValue(slots),
                BandwidthTestByteCount = (long)(parsed.GetValue(bandwidth) * (1L << 30)),
            };
            AdapterBenchResult r = AdapterBench.Run(options, message => Console.Error.WriteLine($"  {message}..."));
            double gib = 1L << 30;
            Console.WriteLine($"base                   {r.BaseParameterCount:N0} parameters ({options.LayerCount} layers, C {options.HiddenSize}, V {options.VocabSize}), bf16: {r.BaseByteCount / 1e9:0.00} GB = {r.BaseByteCount / gib:0.00} GiB on {r.BaseLocation}");
            Console.WriteLine($"machine memory         {r.MemoryTotalByteCount / gib:0.00} GiB total, {r.MemoryAvailableByteCount / gib:0.00} GiB available at start: the base is {r.BaseByteCount / (double)Math.Max(1, r.MemoryTotalByteCount):0.00}x total memory");
            Console.WriteLine($"adapters               LoRA r {options.Rank} on {string.Join(", ", options.TargetModules)}: {r.TrainedParameterCount:N0} trained parameters; {FineTune.Torch.Torch.NumThreads} torch threads");
            Console.WriteLine($"drive                  sequential O_DIRECT read {r.ReadBytesPerSecondBefore / 1e9:0.00} GB/s before the base, {r.ReadBytesPerSecondAfter / 1e9:0.00} GB/s after; write {r.WriteBytesPerSecond / 1e9:0.00} GB/s ({r.BandwidthEngine}), measured in this run");
            Console.WriteLine($"base created           in {r.FillSeconds:0} s ({r.BaseByteCount / r.FillSeconds / 1e9:0.00} GB/s: drawn, rounded to bf16 and written chunk by chunk)");
            for (int i = 0; i < r.Steps.Count; i++)
            {
                var s = r.Steps[i];
                Console.WriteLine($"step {i + 1,-17} {s.Seconds,7:0.0} s, {s.TokensPerSecond:0.00} tokens/s, loss {s.Loss:0.0000}; base read {s.Traffic.WeightReadBytes / 1e9:0.00} GB, read wait {s.ReadWaitSeconds:0.0} s, compute {s.ComputeSeconds:0.0} s, optimizer {s.OptimizerSeconds:0.00} s");
            }
            Console.WriteLine($"tokens/s vs floor      {r.TokensPerSecond:0.000} tokens/s vs {r.FloorTokensPerSecond:0.000} at the base-read floor ({r.BaseBytesPerStep / 1e9:0.00} GB per step / {r.ReadBytesPerSecond / 1e9:0.00} GB/s = {r.FloorSecondsPerStep:0.0} s): ratio {r.TokensPerSecond / r.FloorTokensPerSecond:G3}");
            Console.WriteLine($"host memory            VmHWM {r.PeakResidentByteCount / gib:0.000} GiB (RSS {r.ResidentBeforeEngineByteCount / gib:0.000} GiB before the engine; engine plan {r.PlannedHostByteCount / gib:0.000} GiB) = {r.PeakResidentByteCount / (double)r.BaseByteCount:0.000}x the base");
            Console.WriteLine($"in memory instead      plain libtorch would hold the {r.BaseByteCount / gib:0.00} GiB bf16 base resident: {(r.BaseByteCount > r.MemoryTotalByteCount ? $"does not fit in this machine's {r.MemoryTotalByteCount / gib:0.00} GiB" : "fits; compare with `finetune bench step`")}");
            return ExitCodes.Success;
        });
        return command;
    }
}
