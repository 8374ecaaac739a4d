using System.Diagnostics;

namespace FineTune.Offload.DataParallel;

/// <summary>
/// What a data-parallel step spent in collectives, by kind: the gradient reduce-scatters, the weight all-gathers
/// and the small all-reduces (norm, loss, flags); calls, bytes of this rank's buffers handed to them and seconds
/// blocked in them. Thread-safe (the step's thread and the optimizer's flow add; one at a time in practice).
/// </summary>
public sealed class CollectiveCounters
{
    private long _reduceScatterTicks, _allGatherTicks, _allReduceTicks;
    private long _reduceScatterBytes, _allGatherBytes, _allReduceBytes;
    private long _reduceScatters, _allGathers, _allReduces;

    public double ReduceScatterSeconds => Seconds(ref _reduceScatterTicks);

    public double AllGatherSeconds => Seconds(ref _allGatherTicks);

    public double AllReduceSeconds => Seconds(ref _allReduceTicks);

    /// <summary>Bytes of the stripe buffers reduce-scattered (W shards each).</summary>
    public long ReduceScatterByteCount => Interlocked.Read(ref _reduceScatterBytes);

    /// <summary>Bytes of the stripe buffers all-gathered (W shards each).</summary>
    public long AllGatherByteCount => Interlocked.Read(ref _allGatherBytes);

    public long AllReduceByteCount => Interlocked.Read(ref _allReduceBytes);

    public long ReduceScatterCount => Interlocked.Read(ref _reduceScatters);

    public long AllGatherCount => Interlocked.Read(ref _allGathers);

    public long AllReduceCount => Interlocked.Read(ref _allReduces);

    /// <summary>Seconds in every collective.</summary>
    public double TotalSeconds => ReduceScatterSeconds + AllGatherSeconds + AllReduceSeconds;

    internal void AddReduceScatter(long byteCount, long startTimestamp) => Add(ref _reduceScatterTicks, ref _reduceScatterBytes, ref _reduceScatters, byteCount, startTimestamp);

    internal void AddAllGather(long byteCount, long startTimestamp) => Add(ref _allGatherTicks, ref _allGatherBytes, ref _allGathers, byteCount, startTimestamp);

    public void AddAllReduce(long byteCount, long startTimestamp) => Add(ref _allReduceTicks, ref _allReduceBytes, ref _allReduces, byteCount, startTimestamp);

    private static void Add(ref long ticks, ref long bytes, ref long calls, long byteCount, long startTimestamp)
    {
        Interlocked.Add(ref ticks, Stopwatch.GetTimestamp() - startTimestamp);
        Interlocked.Add(ref bytes, byteCount);
        Interlocked.Increment(ref calls);
    }

    private static double Seconds(ref long ticks) => Interlocked.Read(ref ticks) / (double)Stopwatch.Frequency;
}
