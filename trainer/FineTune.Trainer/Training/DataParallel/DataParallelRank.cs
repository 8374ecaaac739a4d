using System.Diagnostics;
using FineTune.Offload.DataParallel;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch.Distributed;

namespace FineTune.Trainer.Training.DataParallel;

/// <summary>
/// What makes a <see cref="TrainingEngine"/> one rank of a ZeRO data-parallel group (built only when the world size
/// is above 1; one process has none of it): the stripe buffers from the engine's pool, the gradient source that
/// reduce-scatters the fp32 accumulators to the owners (<see cref="ReducedGradients"/>), the weight write-back that
/// all-gathers the owners' updates into every rank's store (<see cref="GatheredWeights"/>), and the collective
/// counters. The step's collectives, in the order every rank runs them: reduce-scatter of every stripe after the last
/// backward, one all-reduce of the norm's partial sums, the owners' updates with one all-gather per stripe, one
/// all-reduce of the loss sum. All of them from one thread at a time (the step's, or the optimizer's flow while the
/// step's thread waits for it), as c10d needs.
/// </summary>
internal sealed class DataParallelRank : IDisposable
{
    private readonly StripeBuffers _buffers;

    public DataParallelRank(ProcessGroup group, RankPartition partition, HostMemoryPool pool, ParameterStore store, Func<int, nint> accumulator)
    {
        Group = group;
        Partition = partition;
        _buffers = new StripeBuffers(partition, pool);
        Gradients = new ReducedGradients(partition, accumulator, group, _buffers, Counters);
        Weights = new GatheredWeights(partition, store, group, _buffers, Counters);
    }

    public ProcessGroup Group { get; }

    public RankPartition Partition { get; }

    public CollectiveCounters Counters { get; } = new();

    /// <summary>The optimizer's gradients: reduced to the owners, the norm summed over ranks.</summary>
    public ReducedGradients Gradients { get; }

    /// <summary>The optimizer's weight write-back: every rank receives every update.</summary>
    public GatheredWeights Weights { get; }

    /// <summary>The sum of <paramref name="value"/> over the ranks (the loss: each rank's token losses over the global token count).</summary>
    public double SumOverRanks(double value)
    {
        Span<double> sum = [value];
        long start = Stopwatch.GetTimestamp();
        Group.AllReduce(sum);
        Counters.AddAllReduce(8, start);
        return sum[0];
    }

    /// <summary>The folder this rank saves its optimizer states into, under a checkpoint's optimizer folder.</summary>
    public string StateFolder(string directory) => OptimizerStateFile.RankFolder(directory, Group.Rank);

    public void Dispose() => _buffers.Dispose();
}
