using System.Diagnostics;
using FineTune.Offload.Bench;
using FineTune.Torch;
using FineTune.Torch.Distributed;

namespace FineTune.Cli.Bench;

/// <summary>
/// `finetune bench collectives`, one rank's part. Every rank times all-reduce, both Gloo all-gather methods, the
/// three reduce-scatter fallbacks and broadcast of the same buffer: a barrier before each round, the round's time
/// reduced with max over ranks, the best round kept. Then rank 0 alone measures the limit, the stream triad (memory
/// bandwidth, all cores; on one machine every byte a collective moves is copied through memory at least twice,
/// into the kernel and out of it); the other ranks get 0 for it and print nothing.
/// reference: nccl-tests doc/PERFORMANCE.md for algbw and busbw (all-reduce 2(W-1)/W, all-gather and
/// reduce-scatter (W-1)/W, broadcast 1).
/// </summary>
internal static class CollectiveBench
{
    public static (double TriadBytesPerSecond, List<CollectiveTiming> Timings) Run(ProcessGroup group, long elementCount, int rounds, Action<string>? progress)
    {
        int w = group.WorldSize;
        long n = elementCount / w * w;  // divisible by the world size, for the sharded collectives
        var timings = new List<CollectiveTiming>();
        using (Tensor full = Torch.Torch.Ones([n], DType.Float32))
        using (Tensor shard = Torch.Torch.Ones([n / w], DType.Float32))
        using (Tensor scratch = Torch.Torch.Empty([n], DType.Float32))  // the all-to-all's landing buffer, as a pool would lend it
        {
            double busAllReduce = 2.0 * (w - 1) / w, busSharded = (double)(w - 1) / w;
            timings.Add(Time(group, "all_reduce", rounds, n * 4, busAllReduce, () => group.AllReduce(full), progress));
            timings.Add(Time(group, "all_gather (broadcast per shard)", rounds, n * 4, busSharded, () => group.AllGather(shard, full, AllGatherMethod.BroadcastPerShard), progress));
            timings.Add(Time(group, "all_gather (gloo allgather)", rounds, n * 4, busSharded, () => group.AllGather(shard, full, AllGatherMethod.GlooAllGather), progress));
            timings.Add(Time(group, "reduce_scatter (all-reduce + copy)", rounds, n * 4, busSharded,
                () => group.ReduceScatter(full, shard, ReduceOp.Sum, ReduceScatterFallback.AllReduceThenCopy), progress));
            timings.Add(Time(group, "reduce_scatter (reduce per shard)", rounds, n * 4, busSharded,
                () => group.ReduceScatter(full, shard, ReduceOp.Sum, ReduceScatterFallback.ReducePerShard), progress));
            timings.Add(Time(group, "reduce_scatter (all-to-all + sum)", rounds, n * 4, busSharded,
                () => group.ReduceScatter(full, shard, ReduceOp.Sum, ReduceScatterFallback.AllToAllThenSum, scratch), progress));
            timings.Add(Time(group, "broadcast", rounds, n * 4, 1.0, () => group.Broadcast(full, 0), progress));
        }
        group.Barrier();
        // The limit last, on rank 0 alone once the others are done: nobody waits on it inside a timeout, and no
        // other rank's traffic shares the memory bus with it.
        double triad = 0;
        if (group.Rank == 0)
        {
            progress?.Invoke("measuring memory bandwidth (stream triad)");
            triad = StreamTriad.MeasureBytesPerSecond(16L << 20, repeats: 5);
        }
        return (triad, timings);
    }

    private static CollectiveTiming Time(ProcessGroup group, string name, int rounds, long byteCount, double busFactor, Action collective, Action<string>? progress)
    {
        if (group.Rank == 0)
            progress?.Invoke($"{name}: 1 warm-up and {rounds} timed rounds");
        collective();
        double best = double.MaxValue;
        Span<double> seconds = stackalloc double[1];
        for (int r = 0; r < rounds; r++)
        {
            group.Barrier();
            long start = Stopwatch.GetTimestamp();
            collective();
            seconds[0] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            group.AllReduce(seconds, ReduceOp.Max);
            best = Math.Min(best, seconds[0]);
        }
        return new CollectiveTiming(name, best, byteCount, busFactor);
    }
}
