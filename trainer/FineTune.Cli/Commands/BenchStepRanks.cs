using FineTune.Torch.Distributed;
using FineTune.Trainer.Training.Bench;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune bench step --nproc N`, one rank: joins the group, runs <see cref="DataParallelStepBench"/>, and rank 0
/// prints each figure next to the limit measured in the same run: tokens/s per rank and together, the collectives'
/// seconds per step against a c10d all-reduce of the whole fp32 gradient (PyTorch DDP's per-step traffic) and its bus
/// bandwidth, the state split, VmHWM per rank, and plain libtorch eager on all cores in one process as the baseline.
/// </summary>
internal static class BenchStepRanks
{
    public static int RunRank(DistributedEnvironment env, StepBenchOptions options, string precision)
    {
        using ProcessGroup group = env.JoinGroup();
        DataParallelStepBenchResult r = DataParallelStepBench.Run(group, options, message => Console.Error.WriteLine($"  {message}..."));
        if (group.Rank != 0)
            return ExitCodes.Success;
        int w = r.WorldSize;
        string PerRank(IReadOnlyList<double> values, Func<double, string> format) => string.Join(", ", values.Select((v, i) => $"{i}: {format(v)}"));
        double gib = 1L << 30;
        Console.WriteLine($"model                  {r.ParameterCount:N0} params ({options.LayerCount} layers, C {options.HiddenSize}, V {options.VocabSize}); {precision} on CPU");
        Console.WriteLine($"ranks                  {w} on this machine over loopback Gloo, {FineTune.Torch.Torch.NumThreads} torch threads each of {Environment.ProcessorCount} cores; " +
            $"each {options.AccumulationSteps} x {options.MicroBatchSize}x{options.SequenceLength} tokens of a global batch of {w * options.MicroBatchSize} rows; states and activations on nvme");
        Console.WriteLine($"tokens/s per rank      {PerRank(r.TokensPerSecond, v => $"{v:N0}")}; together {r.TotalTokensPerSecond:N0} (median step {PerRank(r.StepSeconds, v => $"{v:0.000} s")})");
        Console.WriteLine($"vs libtorch eager      one process on {r.EagerThreads} threads training the whole global batch in memory: {r.EagerTokensPerSecond:N0} tokens/s; " +
            $"{w} ranks together {r.TotalTokensPerSecond / r.EagerTokensPerSecond:0.00}x of it");
        Console.WriteLine($"collectives per step   rank 0: reduce-scatter {r.ReduceScatterSeconds[0]:0.000} s + all-gather {r.AllGatherSeconds[0]:0.000} s + all-reduce {r.AllReduceSeconds[0]:0.000} s " +
            $"= {r.CollectiveSeconds:0.000} s, {100 * r.CollectiveSeconds / r.StepSeconds[0]:0.0}% of the step ({r.StripeCount} stripes of {r.StripeByteCount / 1e6:0.0} MB each way)");
        Console.WriteLine($"the same, ranks aligned reduce-scatter {r.ReduceScatterAloneSeconds:0.000} s + all-gather {r.AllGatherAloneSeconds:0.000} s when every rank starts them together " +
            $"(the rest of the step's {r.ReduceScatterSeconds[0] + r.AllGatherSeconds[0]:0.000} s is waiting for the slower rank)");
        Console.WriteLine($"c10d all-reduce        of the fp32 gradient ({4 * r.ParameterCount / 1e6:0.0} MB, DDP's per-step traffic) measured now: {r.GradientAllReduceSeconds:0.000} s, " +
            $"busbw {r.GradientAllReduceBusBytesPerSecond / 1e9:0.00} GB/s; the aligned reduce-scatters + all-gathers take {(r.ReduceScatterAloneSeconds + r.AllGatherAloneSeconds) / r.GradientAllReduceSeconds:0.00}x its time " +
            $"at busbw {r.StripeBusBytesPerSecond / 1e9:0.00} GB/s = {r.StripeBusBytesPerSecond / r.GradientAllReduceBusBytesPerSecond:0.00} of the all-reduce's");
        Console.WriteLine($"state split            optimizer states per rank {PerRank(r.StateByteCounts, v => $"{v / 1e6:0.0} MB")} of {r.SingleRankStateByteCount / 1e6:0.0} MB on one rank " +
            $"({PerRank(r.StateByteCounts, v => $"{v / r.SingleRankStateByteCount:0.000}")})");
        Console.WriteLine($"peak host memory       VmHWM per rank {PerRank(r.PeakResidentByteCounts, v => $"{v / gib:0.000} GiB")}");
        Console.WriteLine($"losses                 rank 0's timed steps {string.Join(", ", r.Losses.Select(l => l.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)))}");
        return ExitCodes.Success;
    }
}
