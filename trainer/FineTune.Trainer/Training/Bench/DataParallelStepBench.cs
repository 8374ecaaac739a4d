using System.Diagnostics;
using FineTune.Offload.DataParallel;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Torch.Distributed;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training.Baselines;

namespace FineTune.Trainer.Training.Bench;

/// <summary>
/// `finetune bench step --nproc N`, one rank's part: the bench model (seed 1) trained with ZeRO over the group, states
/// and activations on this rank's own folder under the drive, each rank <see cref="StepBenchOptions.MicroBatchSize"/>
/// rows of a global batch N times that (the same random windows as `bench step`). The median step per rank, the
/// seconds its collectives took (the engine's counters, per kind), the state bytes it holds and its VmHWM are gathered
/// to rank 0. Then, with every rank taking part, the limit the collectives are measured against: a c10d all-reduce of
/// the whole fp32 gradient (PyTorch DDP's per-step traffic), barrier before each round, max over ranks, best of 3.
/// Last, rank 0 alone, the others waiting at a barrier: plain libtorch eager in memory on all cores, one process
/// training the whole global batch (what a user would run instead).
/// </summary>
public static class DataParallelStepBench
{
    public static DataParallelStepBenchResult Run(ProcessGroup group, StepBenchOptions options, Action<string>? progress = null)
    {
        int w = group.WorldSize, rank = group.Rank;
        LlamaConfig config = options.ModelConfig();
        DType dtype = options.BFloat16 ? DType.BFloat16 : DType.Float32;
        int stepCount = options.WarmupSteps + options.TimedSteps;
        StepBenchOptions global = options with { MicroBatchSize = options.MicroBatchSize * w };
        List<Batch[]> windows = StepBench.RandomWindows(global, stepCount);
        var training = new TrainingOptions
        {
            Precision = options.BFloat16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
            MicroBatchSize = options.MicroBatchSize,
            SequenceLength = options.SequenceLength,
            AccumulationSteps = options.AccumulationSteps,
            AdamW = new() { LearningRate = 1e-4 },
            SubGroupElementCount = options.SubGroupElementCount,
            OptimizerTier = StateTier.Nvme,
            NvmeActivationLayers = -1,
            NvmeDirectory = Directory.CreateDirectory(Path.Combine(options.NvmeDirectory, $"rank-{rank}")).FullName,
            DataParallelGroup = group,
        };

        if (rank == 0)
            progress?.Invoke($"data parallel over {w} ranks: {stepCount} steps");
        var steps = new List<(double Seconds, double Tokens, double ReduceScatter, double AllGather, double AllReduce, double Loss)>();
        long parameterCount, singleRankStates, stripeBytes, shardElements;
        double stateBytes;
        int stripes, weightBytes;
        using (var model = LlamaModel.Create(config, 1, dtype, Device.Cpu))
        using (var engine = new TrainingEngine(model, training))
        {
            CollectiveCounters counters = engine.Collectives!;
            parameterCount = model.ParameterCount;
            for (int s = 0; s < stepCount; s++)
            {
                Batch[] shards = windows[s].Select(b => Shard(b, rank, w)).ToArray();
                (double rs, double ag, double ar) = (counters.ReduceScatterSeconds, counters.AllGatherSeconds, counters.AllReduceSeconds);
                StepMetrics m = engine.Step(shards);
                if (s >= options.WarmupSteps)
                    steps.Add((m.Seconds, shards.Sum(b => (double)b.TokenCount), counters.ReduceScatterSeconds - rs, counters.AllGatherSeconds - ag, counters.AllReduceSeconds - ar, m.Loss));
            }
            stateBytes = engine.Optimizer.StateByteCount;
            singleRankStates = 12 * engine.Plan.Layout.ElementCount;
            stripes = engine.Plan.Partition!.StripeCount;
            stripeBytes = StripeBuffers.ByteCount(engine.Plan.Partition);
            shardElements = engine.Plan.Partition.ShardElementCount;
            weightBytes = dtype.ElementByteCount();
        }
        Directory.Delete(training.NvmeDirectory!); // empty: the swap files go with the engine
        var median = steps.OrderBy(s => s.Seconds).ElementAt(steps.Count / 2);
        double[] Gather(double value)
        {
            var all = new double[w];
            all[rank] = value;
            group.AllReduce(all);
            return all;
        }
        double[] seconds = Gather(median.Seconds), tokens = Gather(median.Tokens), reduceScatter = Gather(median.ReduceScatter),
            allGather = Gather(median.AllGather), allReduce = Gather(median.AllReduce), states = Gather(stateBytes),
            peaks = Gather(ProcessMemory.PeakResidentByteCount());

        if (rank == 0)
            progress?.Invoke($"c10d all-reduce of the fp32 gradient ({parameterCount:N0} floats), best of 3");
        double allReduceSeconds = TimeAllReduce(group, parameterCount, rounds: 3);
        if (rank == 0)
            progress?.Invoke($"the step's reduce-scatters and all-gathers alone ({stripes} stripes), best of 3");
        (double reduceScatterAlone, double allGatherAlone) = TimeStripes(group, stripes, shardElements, weightBytes, rounds: 3);
        double busBytesPerSecond = 2.0 * (w - 1) / w * 4 * parameterCount / allReduceSeconds;

        double eager = 0;
        int eagerThreads = Environment.ProcessorCount;
        if (rank == 0)
        {
            progress?.Invoke($"plain libtorch eager in memory, one process on {eagerThreads} threads, the whole global batch: {stepCount} steps");
            eager = EagerTokensPerSecond(config, dtype, global, windows, eagerThreads);
        }
        group.Barrier(); // the others wait here while rank 0 measures the eager baseline
        return new DataParallelStepBenchResult(w, parameterCount, seconds, tokens, reduceScatter, allGather, allReduce, states, peaks,
            singleRankStates, stripes, stripeBytes, allReduceSeconds, busBytesPerSecond, reduceScatterAlone, allGatherAlone, eager, eagerThreads, weightBytes / 4.0, steps.Select(s => s.Loss).ToList());
    }

    /// <summary>Rank <paramref name="rank"/>'s rows of a global batch, its loss over the whole batch's tokens.</summary>
    private static Batch Shard(Batch batch, int rank, int worldSize)
    {
        int rows = batch.BatchSize / worldSize, t = batch.SequenceLength;
        return new Batch(rows, t, batch.InputIds.AsSpan(rank * rows * t, rows * t).ToArray(), batch.Labels.AsSpan(rank * rows * t, rows * t).ToArray(),
            batch.PositionAfter, batch.TokenCount);
    }

    private static double TimeAllReduce(ProcessGroup group, long elementCount, int rounds)
    {
        using Tensor gradient = FineTune.Torch.Torch.Ones([elementCount], DType.Float32);
        group.AllReduce(gradient); // warm-up
        double best = double.MaxValue;
        Span<double> seconds = [0];
        for (int r = 0; r < rounds; r++)
        {
            group.Barrier();
            long start = Stopwatch.GetTimestamp();
            group.AllReduce(gradient);
            seconds[0] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            group.AllReduce(seconds, ReduceOp.Max);
            best = Math.Min(best, seconds[0]);
        }
        return best;
    }

    /// <summary>
    /// The step's stripe collectives alone, every rank starting together (a barrier before each round, max over ranks):
    /// what they cost without waiting for a slower rank. Buffers of the engine's stripe sizes; fp32 gradients through
    /// Gloo's all-to-all + sum, the weights as bytes.
    /// </summary>
    private static (double ReduceScatter, double AllGather) TimeStripes(ProcessGroup group, int stripes, long shardElements, int weightBytes, int rounds)
    {
        int w = group.WorldSize;
        using Tensor gradients = FineTune.Torch.Torch.Ones([w * shardElements], DType.Float32);
        using Tensor scratch = FineTune.Torch.Torch.Empty([w * shardElements], DType.Float32);
        using Tensor mine = FineTune.Torch.Torch.Empty([shardElements], DType.Float32);
        using Tensor weights = FineTune.Torch.Torch.Zeros([w * shardElements * weightBytes], DType.UInt8);
        using Tensor myWeights = weights.Narrow(0, group.Rank * shardElements * weightBytes, shardElements * weightBytes);
        double Time(Action collective)
        {
            collective(); // warm-up
            double best = double.MaxValue;
            Span<double> seconds = [0];
            for (int r = 0; r < rounds; r++)
            {
                group.Barrier();
                long start = Stopwatch.GetTimestamp();
                for (int s = 0; s < stripes; s++)
                    collective();
                seconds[0] = Stopwatch.GetElapsedTime(start).TotalSeconds;
                group.AllReduce(seconds, ReduceOp.Max);
                best = Math.Min(best, seconds[0]);
            }
            return best; // every stripe of one step
        }
        return (Time(() => group.ReduceScatter(gradients, mine, ReduceOp.Sum, scratch: scratch)), Time(() => group.AllGather(myWeights, weights)));
    }

    /// <summary>Median tokens/s of plain libtorch eager (one autograd graph, libtorch's AdamW) on <paramref name="threads"/> threads.</summary>
    private static double EagerTokensPerSecond(LlamaConfig config, DType dtype, StepBenchOptions global, List<Batch[]> windows, int threads)
    {
        int before = FineTune.Torch.Torch.NumThreads;
        FineTune.Torch.Torch.SetNumThreads(threads);
        try
        {
            var options = new TrainingOptions
            {
                Precision = global.BFloat16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
                MicroBatchSize = global.MicroBatchSize, SequenceLength = global.SequenceLength, AccumulationSteps = global.AccumulationSteps,
                AdamW = new() { LearningRate = 1e-4 },
            };
            using var model = LlamaModel.Create(config, 1, dtype, Device.Cpu);
            using ITrainer trainer = Trainers.Create(model, options, TrainingMode.InMemory, recompute: false);
            var timed = new List<double>();
            for (int s = 0; s < windows.Count; s++)
            {
                StepMetrics m = trainer.Step(windows[s]);
                if (s >= global.WarmupSteps)
                    timed.Add(m.TokensPerSecond);
            }
            return timed.Order().ElementAt(timed.Count / 2);
        }
        finally
        {
            FineTune.Torch.Torch.SetNumThreads(before);
        }
    }
}
