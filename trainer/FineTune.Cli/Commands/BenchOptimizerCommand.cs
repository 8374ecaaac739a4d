using System.CommandLine;
using FineTune.Offload.Bench;

namespace FineTune.Cli.Commands;

/// <summary>`finetune bench optimizer`: a full step with states on NVMe vs the I/O floor, exact pool vs baseline allocator.</summary>
internal static class BenchOptimizerCommand
{
    public static Command Create()
    {
        var paramsOption = new Option<long>("--params") { Description = "Parameters (bf16 weights and gradients in host memory).", DefaultValueFactory = _ => 100_000_000 };
        var nvmeOption = new Option<string>("--nvme") { Description = "Directory on the drive that holds the swap space.", Required = true };
        var hostOption = new Option<double>("--host-gb") { Description = "Host memory budget of the buffer pool, GiB.", DefaultValueFactory = _ => 8 };
        var subGroupOption = new Option<long>("--sub-group") { Description = "Elements per sub-group.", DefaultValueFactory = _ => 25_000_000 };
        var stepsOption = new Option<int>("--steps") { Description = "Timed steps (median is reported).", DefaultValueFactory = _ => 3 };
        var command = new Command("optimizer", "Step time with optimizer states on NVMe vs the I/O floor measured now; pool bytes vs the baseline allocator.");
        foreach (Option option in new Option[] { paramsOption, nvmeOption, hostOption, subGroupOption, stepsOption })
            command.Options.Add(option);
        command.SetAction(parseResult =>
        {
            long count = parseResult.GetValue(paramsOption);
            string directory = parseResult.GetValue(nvmeOption)!;
            if (!Directory.Exists(directory))
                throw new UserErrorException($"--nvme {directory} does not exist; give an existing directory on the drive to test.");
            long budget = (long)(parseResult.GetValue(hostOption) * (1L << 30));
            OptimizerBenchResult r = OptimizerBench.Run(count, directory, budget, parseResult.GetValue(subGroupOption), parseResult.GetValue(stepsOption),
                message => Console.Error.WriteLine($"  {message}..."));
            Console.WriteLine($"params                 {r.ParamCount:N0} in {r.SubGroupCount} sub-groups of {r.SubGroupElementCount:N0}; states {r.StateLocation}");
            Console.WriteLine($"sequential bandwidth   read {r.ReadBytesPerSecond / 1e9:0.00} GB/s, write {r.WriteBytesPerSecond / 1e9:0.00} GB/s ({r.BandwidthEngine})");
            Print(r.Exact);
            Console.WriteLine($"I/O floor              {r.IoFloorSeconds:0.000} s (read + write time) -> step / floor = {r.StepOverFloor:0.00}x (target <= 1.15x)");
            Console.WriteLine($"overlapped I/O floor   {r.OverlappedIoFloorSeconds:0.000} s (max of read, write time) -> step / floor = {r.Exact.StepSeconds / r.OverlappedIoFloorSeconds:0.00}x");
            Print(r.Baseline);
            Console.WriteLine($"pool bytes exact / baseline = {r.PoolRatio:0.00} (target <= 0.50)");
            return ExitCodes.Success;
        });
        return command;
    }

    private static void Print(OptimizerRun run)
    {
        if (run.Refused)
        {
            Console.WriteLine($"{run.Allocator,-9} pool      refused by the host budget: needs {run.PoolReservedByteCount / (double)(1L << 30):0.00} GiB");
            return;
        }
        Console.WriteLine($"{run.Allocator,-9} step      {run.StepSeconds:0.000} s (read {run.BytesReadPerStep / 1e9:0.00} GB, written {run.BytesWrittenPerStep / 1e9:0.00} GB; " +
            $"waits read {run.ReadWaitSecondsPerStep:0.000} s, write {run.WriteWaitSecondsPerStep:0.000} s; update {run.UpdateSecondsPerStep:0.000} s)");
        Console.WriteLine($"{run.Allocator,-9} pool      reserved {run.PoolReservedByteCount / (double)(1L << 30):0.000} GiB, peak in use {run.PoolPeakInUseByteCount / (double)(1L << 30):0.000} GiB; process peak RSS {run.PeakResidentByteCount / (double)(1L << 30):0.00} GiB");
    }
}
