using System.CommandLine;
using FineTune.Cli.Bench;
using FineTune.Cli.Launch;
using FineTune.Torch.Distributed;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune bench collectives [--nproc 2]`: c10d Gloo collectives between local ranks over loopback, next to the
/// memory bandwidth measured in the same run. Started without torchrun variables it
/// launches --nproc ranks of itself (<see cref="LocalLauncher"/>); each rank runs <see cref="CollectiveBench"/>,
/// rank 0 prints. What a user would run instead is torch.distributed over Gloo, which is this same c10d code.
/// </summary>
internal static class BenchCollectivesCommand
{
    public static Command Create()
    {
        var nprocOption = new Option<int>("--nproc") { Description = "Local ranks to start.", DefaultValueFactory = _ => 2 };
        var mibOption = new Option<int>("--mib") { Description = "MiB of float32 per collective (the whole buffer; each rank's shard is 1/N of it).", DefaultValueFactory = _ => 64 };
        var roundsOption = new Option<int>("--rounds") { Description = "Timed rounds per collective (best is reported).", DefaultValueFactory = _ => 5 };
        var timeoutOption = new Option<int>("--timeout") { Description = "Seconds a rank waits for its peers before it fails.", DefaultValueFactory = _ => 120 };
        var logOption = new Option<string?>("--log-dir") { Description = "Folder for the ranks' logs (default: a new folder under the temp directory)." };
        var command = new Command("collectives", "c10d all-reduce, all-gather, reduce-scatter and broadcast bandwidth between local ranks over loopback, vs the memory bandwidth measured now.");
        foreach (Option option in new Option[] { nprocOption, mibOption, roundsOption, timeoutOption, logOption })
            command.Options.Add(option);
        command.SetAction(parsed =>
        {
            int mib = parsed.GetValue(mibOption), rounds = parsed.GetValue(roundsOption);
            if (mib < 1 || rounds < 1)
                throw new UserErrorException("--mib and --rounds must be at least 1.");
            DistributedEnvironment env = DistributedEnvironment.FromProcess();
            if (env.IsDistributed)
                return RunRank(env, mib, rounds);
            int nproc = parsed.GetValue(nprocOption);
            string logs = parsed.GetValue(logOption) ?? Path.Combine(Path.GetTempPath(), $"finetune-bench-collectives-{Environment.ProcessId}");
            string[] arguments = ["bench", "collectives", "--mib", $"{mib}", "--rounds", $"{rounds}"];
            return LocalLauncher.Run(arguments, nproc, logs, LocalLauncher.Timeout(parsed.GetValue(timeoutOption)));
        });
        return command;
    }

    private static int RunRank(DistributedEnvironment env, int mib, int rounds)
    {
        using ProcessGroup group = env.JoinGroup();
        long elements = (long)mib * (1 << 20) / 4;
        var (triad, timings) = CollectiveBench.Run(group, elements, rounds, message => Console.Error.WriteLine($"  {message}..."));
        if (group.Rank != 0)
            return ExitCodes.Success;
        Console.WriteLine($"ranks                  {group.WorldSize} on this machine over loopback Gloo (libtorch {FineTune.Torch.Torch.LibTorchVersion}), {mib} MiB float32 per collective, best of {rounds}; {Environment.ProcessorCount} cores");
        Console.WriteLine($"memory (stream triad)  {triad / 1e9:0.00} GB/s on all cores");
        foreach (CollectiveTiming t in timings)
            Console.WriteLine($"{t.Name,-36} {t.Seconds * 1e3,8:0.0} ms  algbw {t.AlgorithmBytesPerSecond / 1e9:0.00} GB/s  busbw {t.BusBytesPerSecond / 1e9:0.00} GB/s = {t.BusBytesPerSecond / triad:0.000} of memory bandwidth");
        CollectiveTiming fastest = timings.Where(t => t.Name.StartsWith("reduce_scatter", StringComparison.Ordinal)).MinBy(t => t.Seconds)!;
        CollectiveTiming allReduce = timings.Single(t => t.Name == "all_reduce");
        Console.WriteLine($"reduce_scatter choice  {fastest.Name} is fastest here, at {allReduce.Seconds / fastest.Seconds:0.00}x the speed of an all-reduce of the buffer; the default is {new ProcessGroupOptions().ReduceScatterFallback}");
        CollectiveTiming broadcasts = timings.Single(t => t.Name.Contains("broadcast per shard", StringComparison.Ordinal));
        CollectiveTiming gloo = timings.Single(t => t.Name.Contains("gloo allgather", StringComparison.Ordinal));
        Console.WriteLine($"all_gather choice      {Faster(broadcasts, gloo)}; the default is {new ProcessGroupOptions().AllGatherMethod}");
        Console.WriteLine("what users run instead torch.distributed over Gloo: the same c10d ProcessGroupGloo these figures come from");
        return ExitCodes.Success;
    }

    private static string Faster(CollectiveTiming a, CollectiveTiming b) =>
        $"{(a.Seconds <= b.Seconds ? a.Name : b.Name)} is {Math.Max(a.Seconds, b.Seconds) / Math.Min(a.Seconds, b.Seconds):0.00}x faster here";
}
