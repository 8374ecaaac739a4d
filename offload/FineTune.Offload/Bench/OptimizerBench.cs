using System.Diagnostics;
using System.Runtime.InteropServices;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;

namespace FineTune.Offload.Bench;

/// <summary>
/// A full optimizer step with states on NVMe, measured against the I/O floor of that step (its bytes read and
/// written at the drive's sequential bandwidth, measured in the same run on the same directory), with the pool
/// and the process peak RSS; then the same configuration with the baseline (ZeRO-Infinity-like) allocator.
/// Parameters: 8 equal "layers" of bf16 weights and bf16 gradients in host memory.
/// </summary>
public static unsafe class OptimizerBench
{
    public static OptimizerBenchResult Run(long paramCount, string nvmeDirectory, long hostBudgetByteCount, long subGroupElementCount,
        int steps = 3, Action<string>? progress = null)
    {
        const int layers = 8;
        long perLayer = Math.Max(1, paramCount / layers);
        var memory = new List<nint>();
        var parameters = new List<HostParameter>();
        try
        {
            for (int l = 0; l < layers; l++)
            {
                long n = l == layers - 1 ? paramCount - perLayer * (layers - 1) : perLayer;
                var weight = (ushort*)NativeMemory.AlignedAlloc((nuint)(n * 2), 4096);
                var gradient = (ushort*)NativeMemory.AlignedAlloc((nuint)(n * 2), 4096);
                memory.Add((nint)weight);
                memory.Add((nint)gradient);
                for (long i = 0; i < n; i++)
                {
                    weight[i] = LowPrecision.ToBFloat16((float)((i * 2654435761L % 2001) - 1000) * 1e-3f);
                    gradient[i] = LowPrecision.ToBFloat16((float)((i * 40503L % 2001) - 1000) * 1e-4f);
                }
                parameters.Add(new HostParameter($"layers.{l}.weight", n, (nint)weight, ElementType.BFloat16, (nint)gradient, ElementType.BFloat16));
            }
            var options = new PartitionedOptimizerOptions
            {
                Tier = StateTier.Nvme,
                NvmeDirectory = nvmeDirectory,
                HostBudgetByteCount = hostBudgetByteCount,
                SubGroupElementCount = subGroupElementCount,
            };
            long rounded = PartitionedOptimizer.RoundSubGroupElementCount(subGroupElementCount);
            long need = PartitionedOptimizer.PlanPool(SubGroup.Partition(parameters.Select(p => p.ElementCount).ToList(), rounded), rounded, options)
                .ReservedByteCount(PoolAllocatorKind.Exact);
            if (need > hostBudgetByteCount)
                throw new UserErrorException($"The optimizer's buffer pool needs {need / (double)(1L << 30):0.###} GiB but --host-gb allows {hostBudgetByteCount / (double)(1L << 30):0.###} GiB; raise --host-gb or lower --sub-group.");
            long stateBytes = 12 * paramCount;
            progress?.Invoke($"measuring sequential O_DIRECT bandwidth in {nvmeDirectory}");
            var (read, write, engine) = SequentialBandwidth.Measure(nvmeDirectory, Math.Clamp(stateBytes, 1L << 30, 8L << 30));
            progress?.Invoke("running the optimizer with the exact pool");
            (OptimizerRun exact, int groups, string location) = RunOnce(parameters, options, steps);
            if (exact.Refused)
                throw new UserErrorException(exact.RefusalMessage!);
            progress?.Invoke("running the optimizer with the baseline allocator");
            (OptimizerRun baseline, _, _) = RunOnce(parameters, options with { Allocator = PoolAllocatorKind.Baseline }, steps);
            return new OptimizerBenchResult(paramCount, rounded, groups, location, read, write, engine, exact, baseline);
        }
        finally
        {
            foreach (nint pointer in memory)
                NativeMemory.AlignedFree((void*)pointer);
        }
    }

    private static (OptimizerRun Run, int Groups, string Location) RunOnce(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options, int steps)
    {
        string name = options.Allocator.ToString().ToLowerInvariant();
        PartitionedOptimizer optimizer;
        try
        {
            optimizer = options.Allocator == PoolAllocatorKind.Baseline
                ? ZeroInfinityBaseline.Create(parameters, options)
                : PartitionedOptimizer.Create(parameters, options);
        }
        catch (UserErrorException error) when (error.Message.Contains("host_gb", StringComparison.Ordinal))
        {
            long subGroup = PartitionedOptimizer.RoundSubGroupElementCount(options.SubGroupElementCount);
            var groups = SubGroup.Partition(parameters.Select(p => p.ElementCount).ToList(), subGroup);
            long need = (options.Allocator == PoolAllocatorKind.Baseline ? ZeroInfinityBaseline.PlanPool(groups, subGroup, options) : PartitionedOptimizer.PlanPool(groups, subGroup, options))
                .ReservedByteCount(options.Allocator);
            return (new OptimizerRun(name, true, error.Message, 0, 0, 0, 0, 0, 0, need, 0, ProcessMemory.PeakResidentByteCount()), groups.Count, "");
        }
        using (optimizer)
        {
            optimizer.Step(); // warm-up: first touch of the pool and of the swap file's extents
            FineTune.Offload.Rings.TransferSnapshot before = optimizer.Counters.Snapshot();
            var times = new List<double>();
            for (int s = 0; s < steps; s++)
            {
                long start = Stopwatch.GetTimestamp();
                optimizer.Step();
                times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
            FineTune.Offload.Rings.TransferSnapshot after = optimizer.Counters.Snapshot();
            times.Sort();
            double median = times[times.Count / 2];
            var run = new OptimizerRun(name, false, null, median,
                (after.BytesRead - before.BytesRead) / steps,
                (after.BytesWritten - before.BytesWritten) / steps,
                (after.ReadWaitSeconds - before.ReadWaitSeconds) / steps,
                (after.WriteWaitSeconds - before.WriteWaitSeconds) / steps,
                (after.ComputeSeconds - before.ComputeSeconds) / steps,
                optimizer.Pool.ReservedByteCount, optimizer.Pool.PeakInUseByteCount, ProcessMemory.PeakResidentByteCount());
            return (run, optimizer.SubGroups.Count, optimizer.StateLocation);
        }
    }
}
