using System.CommandLine;
using FineTune.Trainer.Training.Bench;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune bench step`: the same model trained as plain libtorch eager would (the baseline) and every way FineTune can,
/// tokens/s ratios to the baseline, MFU against the GEMM rate, peak RSS, the time split, the overlap gains with and
/// without clipping and the NVMe bytes per parameter (logic in FineTune.Trainer.Training.Bench). With --nproc N it
/// starts N local ranks instead, which train the model with ZeRO (<see cref="BenchStepRanks"/>).
/// </summary>
internal static class BenchStepCommand
{
    public static Command Create()
    {
        var nvmeOption = new Option<string>("--nvme") { Description = "Directory on the drive for optimizer-state and activation swap.", Required = true };
        var layersOption = new Option<int>("--layers") { Description = "Decoder layers.", DefaultValueFactory = _ => 4 };
        var hiddenOption = new Option<int>("--hidden") { Description = "Hidden size (C).", DefaultValueFactory = _ => 256 };
        var intermediateOption = new Option<int>("--intermediate") { Description = "MLP intermediate size.", DefaultValueFactory = _ => 688 };
        var headsOption = new Option<int>("--heads") { Description = "Attention heads.", DefaultValueFactory = _ => 8 };
        var vocabOption = new Option<int>("--vocab") { Description = "Vocabulary size.", DefaultValueFactory = _ => 4096 };
        var batchOption = new Option<int>("--batch") { Description = "Micro-batch rows.", DefaultValueFactory = _ => 4 };
        var seqOption = new Option<int>("--seq") { Description = "Sequence length.", DefaultValueFactory = _ => 128 };
        var accumulationOption = new Option<int>("--accumulation") { Description = "Micro-batches per optimizer step.", DefaultValueFactory = _ => 1 };
        var stepsOption = new Option<int>("--steps") { Description = "Timed steps per configuration (median reported).", DefaultValueFactory = _ => 6 };
        var subGroupOption = new Option<long>("--sub-group") { Description = "Elements per optimizer sub-group.", DefaultValueFactory = _ => 2_000_000 };
        var precisionOption = new Option<string>("--precision") { Description = "fp32, or bf16 (bf16 weights and activations, fp32 masters and states).", DefaultValueFactory = _ => "fp32" };
        var clipOption = new Option<double>("--clip") { Description = "max_grad_norm of the clipping configurations.", DefaultValueFactory = _ => 1.0 };
        var nprocOption = new Option<int>("--nproc") { Description = "Data-parallel ranks on this machine (ZeRO; --batch rows each): tokens/s per rank and the collectives' time against a c10d all-reduce measured now.", DefaultValueFactory = _ => 1 };
        var timeoutOption = new Option<int>("--timeout") { Description = "With --nproc: seconds a rank waits for its peers before it fails.", DefaultValueFactory = _ => 300 };
        var command = new Command("step", "Tokens/s and peak RSS of offloaded (states and activations on NVMe, then weights too) vs in-memory training of the same model, with the time split and the overlap gain.");
        foreach (Option option in new Option[] { nvmeOption, layersOption, hiddenOption, intermediateOption, headsOption, vocabOption, batchOption, seqOption, accumulationOption, stepsOption, subGroupOption, precisionOption, clipOption, nprocOption, timeoutOption })
            command.Options.Add(option);
        command.SetAction(parseResult =>
        {
            string directory = parseResult.GetValue(nvmeOption)!;
            if (!Directory.Exists(directory))
                throw new UserErrorException($"--nvme {directory} does not exist; give an existing directory on the drive to test.");
            int steps = parseResult.GetValue(stepsOption), accumulation = parseResult.GetValue(accumulationOption);
            if (steps < 1 || accumulation < 1)
                throw new UserErrorException("--steps and --accumulation must be at least 1.");
            string precision = parseResult.GetValue(precisionOption)!;
            if (precision is not ("fp32" or "bf16"))
                throw new UserErrorException($"--precision {precision} is not fp32 or bf16; use one of them.");
            var env = FineTune.Torch.Distributed.DistributedEnvironment.FromProcess();
            if (parseResult.GetValue(nprocOption) > 1 && !env.IsDistributed)
                return Launch.LocalLauncher.Run(Environment.GetCommandLineArgs()[1..], parseResult.GetValue(nprocOption), Path.Combine(Path.GetTempPath(), $"finetune-bench-step-{Environment.ProcessId}"),
                    Launch.LocalLauncher.Timeout(parseResult.GetValue(timeoutOption)));
            FineTune.Torch.Torch.SetNumThreads(FineTune.Trainer.Runs.TrainingRun.TorchThreadCount()); // as a run would
            FineTune.Torch.Blas.BlasLibrary.WarnIfSlow(Console.Error);
            var options = new StepBenchOptions
            {
                NvmeDirectory = directory,
                LayerCount = parseResult.GetValue(layersOption),
                HiddenSize = parseResult.GetValue(hiddenOption),
                IntermediateSize = parseResult.GetValue(intermediateOption),
                HeadCount = parseResult.GetValue(headsOption),
                VocabSize = parseResult.GetValue(vocabOption),
                MicroBatchSize = parseResult.GetValue(batchOption),
                SequenceLength = parseResult.GetValue(seqOption),
                AccumulationSteps = accumulation,
                TimedSteps = steps,
                SubGroupElementCount = parseResult.GetValue(subGroupOption),
                BFloat16 = precision == "bf16",
                ClipGradNorm = parseResult.GetValue(clipOption),
            };
            if (env.IsDistributed)
                return BenchStepRanks.RunRank(env, options, precision);
            StepBenchResult r = StepBench.Run(options, message => Console.Error.WriteLine($"  {message}..."));
            Console.WriteLine($"model                  {r.ParameterCount:N0} params ({options.LayerCount} layers, C {options.HiddenSize}, V {options.VocabSize}); " +
                $"{options.AccumulationSteps} x {options.MicroBatchSize}x{options.SequenceLength} tokens per step; {precision} on CPU ({FineTune.Torch.Torch.NumThreads} torch threads)");
            Console.WriteLine($"drive                  sequential read {r.ReadBytesPerSecond / 1e9:0.00} GB/s, write {r.WriteBytesPerSecond / 1e9:0.00} GB/s ({r.BandwidthEngine})");
            Console.WriteLine($"cpu                    GEMM {options.MicroBatchSize * options.SequenceLength}x{options.HiddenSize} by {options.HiddenSize}x{options.IntermediateSize} {precision}: " +
                $"{r.GemmFlopsPerSecond / 1e9:0.0} GFLOP/s on {FineTune.Torch.Torch.NumThreads} threads; the model needs {r.ModelFlopsPerStep / 1e9:0.0} GFLOP per step");
            foreach (StepBenchRun run in r.Runs)
                Print(run, r);
            Console.WriteLine($"offloaded / in-memory  tokens/s ratio {r.OffloadedOverInMemory:0.00} (target >= 0.80 when the disk keeps up); " +
                $"vs in-memory without recompute {r.OffloadedOverNoRecompute:0.00}");
            Console.WriteLine($"vs libtorch eager      offloaded with graphs on nvme (states and activations on NVMe, no recompute) {r.OverEager(r.OffloadedSpilled):0.00}x, " +
                $"recomputed from inputs on nvme {r.OverEager(r.Offloaded):0.00}x, offloaded with layers kept in memory {r.OverEager(r.OffloadedKept):0.00}x, offloaded with clipping {r.OverEager(r.Run(StepBenchResult.ClipName)):0.00}x, " +
                $"params on nvme {r.OverEager(r.ParametersOnNvme):0.00}x the tokens/s of plain libtorch eager in memory on the same {FineTune.Torch.Torch.NumThreads} threads (target >= 0.90)");
            Console.WriteLine($"overlap with backward  step time without / with = {r.OverlapGain:0.00}x " +
                $"(optimizer on the critical path {r.OffloadedNoOverlap.OptimizerSeconds + r.OffloadedNoOverlap.ReadWaitSeconds + r.OffloadedNoOverlap.WriteWaitSeconds:0.000} s -> {r.Offloaded.OptimizerSeconds:0.000} s)");
            StepBenchRun clip = r.Run(StepBenchResult.ClipName), clipSync = r.Run(StepBenchResult.ClipNoOverlapName);
            Console.WriteLine($"overlap with clipping  step time synchronous / under the next forward = {r.ClipOverlapGain:0.00}x; optimizer on the critical path " +
                $"{100 * clipSync.OptimizerShare:0.0}% -> {100 * clip.OptimizerShare:0.0}% of the step (target <= 10%); losses and norms bit-identical: {(r.ClipOverlapIsExact ? "yes" : "NO")}");
            double perParameter(long bytes) => bytes / (double)r.ParameterCount;
            Console.WriteLine($"nvme bytes per param   offloaded: states read {perParameter(r.Offloaded.Traffic.StateReadBytes):0.0} + written {perParameter(r.Offloaded.Traffic.StateWriteBytes):0.0}, " +
                $"activations {perParameter(r.Offloaded.Traffic.ActivationReadBytes + r.Offloaded.Traffic.ActivationWriteBytes):0.0}; params on nvme adds weights read " +
                $"{perParameter(r.ParametersOnNvme.Traffic.WeightReadBytes):0.0} + written {perParameter(r.ParametersOnNvme.Traffic.WeightWriteBytes):0.0} (per step)");
            Console.WriteLine($"same training          max relative loss difference offloaded vs in-memory over {r.Offloaded.Losses.Count} steps: {r.MaxLossRelativeDifference:0.0e+0} " +
                $"(loss {r.InMemory.Losses[0]:0.0000} -> {r.InMemory.Losses[^1]:0.0000} in memory, {r.Offloaded.Losses[0]:0.0000} -> {r.Offloaded.Losses[^1]:0.0000} offloaded); " +
                $"layers kept vs recomputed: losses and norms bit-identical: {(r.KeptIsExact ? "yes" : "NO")}; graphs on nvme vs kept in memory: {(r.SpilledIsExact ? "yes" : "NO")}");
            Console.WriteLine($"params on nvme         tokens/s vs offloaded with resident weights {r.ParametersOnNvmeOverOffloaded:0.00}; " +
                $"pools {r.Offloaded.PoolReservedByteCount / (double)(1L << 30):0.000} -> {r.ParametersOnNvme.PoolReservedByteCount / (double)(1L << 30):0.000} GiB; " +
                $"max relative loss difference vs offloaded {r.ParametersOnNvmeLossDifference:0.0e+0}");
            if (!r.PeakResetWorked)
                Console.WriteLine("note                   /proc/self/clear_refs was not writable: peak RSS figures are cumulative over the runs");
            return ExitCodes.Success;
        });
        return command;
    }

    private static void Print(StepBenchRun run, StepBenchResult r)
    {
        double gib = 1L << 30;
        // The I/O the step needs at the drive's measured rates: whether the disk keeps up with the compute.
        double ioFloor = run.BytesReadPerStep / Math.Max(1, r.ReadBytesPerSecond) + run.BytesWrittenPerStep / Math.Max(1, r.WriteBytesPerSecond);
        Console.WriteLine($"{run.Name,-22} {run.TokensPerSecond,8:N0} tokens/s, step {run.StepSeconds:0.000} s = compute {run.ComputeSeconds:0.000} + read wait {run.ReadWaitSeconds:0.000} + " +
            $"write wait {run.WriteWaitSeconds:0.000} + optimizer {run.OptimizerSeconds:0.000}");
        Console.WriteLine($"{"",-22} moved read {run.BytesReadPerStep / 1e9:0.000} GB, written {run.BytesWrittenPerStep / 1e9:0.000} GB per step (I/O floor {ioFloor:0.000} s); " +
            $"pools {run.PoolReservedByteCount / gib:0.000} GiB; peak RSS {run.PeakResidentByteCount / gib:0.000} GiB (RSS at start {run.ResidentBeforeByteCount / gib:0.000} GiB)");
        Console.WriteLine($"{"",-22} {r.OverEager(run):0.00}x libtorch eager, MFU {100 * r.Mfu(run):0.0}%, optimizer {100 * run.OptimizerShare:0.0}% of the step ({run.UpdateStrategy})");
        Console.WriteLine($"{"",-22} weights: {run.WeightLocation}; states: {run.StateLocation}; activations: {run.ActivationLocation}");
    }
}
