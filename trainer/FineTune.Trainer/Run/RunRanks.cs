using FineTune.Torch.Distributed;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The ranks of a data-parallel run as its loop sees them: which rank this process is, whether it leads (rank 0: it
/// locks and checks the run folder, writes metrics.jsonl, TensorBoard, the plot, evaluations and the checkpoint's
/// manifest), and the few agreements the loop needs beyond the engine's own collectives. Every rank calls the same
/// methods in the same order. A rank that fails simply ends: its peers' next collective fails within the timeout and
/// names it, so no agreement carries error flags. <see cref="Single"/> is a run of one process (no group, no
/// collective).
/// </summary>
public sealed class RunRanks
{
    private RunRanks(ProcessGroup? group) => Group = group;

    public static RunRanks Single { get; } = new(null);

    public static RunRanks Of(ProcessGroup? group) => group is { WorldSize: > 1 } ? new RunRanks(group) : Single;

    public ProcessGroup? Group { get; }

    public int Rank => Group?.Rank ?? 0;

    public int WorldSize => Group?.WorldSize ?? 1;

    public bool IsLeader => Rank == 0;

    /// <summary>Returns when every rank has called it (after the leader's checks of the run folder, before the others read it).</summary>
    public void Barrier() => Group?.Barrier();

    /// <summary>True when <paramref name="flag"/> is true on any rank (a stop one rank was asked for is every rank's).</summary>
    public bool Any(bool flag)
    {
        if (Group is null)
            return flag;
        Span<double> value = [flag ? 1 : 0];
        Group.AllReduce(value, ReduceOp.Max);
        return value[0] > 0;
    }

    /// <summary>Each value summed over the ranks, in place.</summary>
    public void Sum(Span<double> values) => Group?.AllReduce(values);

    /// <summary>Each value's maximum over the ranks, in place.</summary>
    public void Max(Span<double> values) => Group?.AllReduce(values, ReduceOp.Max);

    /// <summary>The leader's <paramref name="value"/> on every rank (the others pass anything).</summary>
    public long FromLeader(long value)
    {
        if (Group is null)
            return value;
        Span<double> sum = [IsLeader ? value : 0]; // exact: a pid or a count is far below 2^53
        Group.AllReduce(sum);
        return (long)sum[0];
    }

    /// <summary>Every rank's <paramref name="value"/>, in rank order.</summary>
    public IReadOnlyList<double> Gather(double value)
    {
        if (Group is null)
            return [value];
        var values = new double[WorldSize];
        values[Rank] = value;
        Group.AllReduce(values);
        return values;
    }
}
