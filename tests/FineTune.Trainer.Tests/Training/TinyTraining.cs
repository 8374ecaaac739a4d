using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Models;
using FineTune.Trainer.Tokenizers;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// A tiny Llama (3 layers, C = 32, GQA 4:2) and byte-tokenized synthetic "reverse" data, so a training step takes
/// milliseconds; helpers to run an engine for N steps and to read every weight back as floats.
/// </summary>
internal static class TinyTraining
{
    public const int SequenceLength = 32;

    public static LlamaConfig Config(bool tied = false) => new()
    {
        ModelType = "llama", VocabSize = new ByteTokenizer().VocabularyCount, HiddenSize = 32, IntermediateSize = 64, LayerCount = 3,
        HeadCount = 4, KvHeadCount = 2, HeadDim = 8, TieWordEmbeddings = tied, InitializerRange = 0.05,
    };

    public static LlamaModel Model(DType dtype = DType.Float32, bool tied = false, long seed = 7) =>
        LlamaModel.Create(Config(tied), seed, dtype, Device.Cpu);

    /// <summary>
    /// Deterministic batches of <paramref name="batchSize"/> rows from the synthetic reverse task; with a world size
    /// above 1, rank <paramref name="rank"/>'s shard of each (batchSize / worldSize rows).
    /// </summary>
    public static List<Batch> Batches(int count, int batchSize, ulong seed = 3, int rank = 0, int worldSize = 1)
    {
        var records = new SyntheticTask(SyntheticTaskKind.Reverse).Generate(400, seed: 11)
            .Select((r, i) => new DataRecord($"synthetic:{i}", null, r, null)).ToList();
        var dataset = TokenizedDataset.Build(records, new ByteTokenizer(), new DatasetOptions(SequenceLength, Template: InstructionTemplate.Compact));
        var loader = new DataLoader(dataset, new DataLoaderOptions(batchSize, SequenceLength, Seed: seed, Shuffle: true, Pack: true, PadId: ByteTokenizer.Pad, Rank: rank, WorldSize: worldSize));
        return Enumerable.Range(0, count).Select(_ => loader.Next()).ToList();
    }

    /// <summary>Rows [first, first + count) of <paramref name="batch"/> as a batch of their own.</summary>
    public static Batch Rows(Batch batch, int first, int count)
    {
        int t = batch.SequenceLength;
        return new Batch(count, t, batch.InputIds.AsSpan(first * t, count * t).ToArray(), batch.Labels.AsSpan(first * t, count * t).ToArray(), batch.PositionAfter);
    }

    public static TrainingOptions Options(int microBatchSize = 2) => new()
    {
        MicroBatchSize = microBatchSize,
        SequenceLength = SequenceLength,
        AdamW = new() { LearningRate = 3e-3 },
        SubGroupElementCount = 8192,
    };

    /// <summary>The engine, or the in-memory baseline (with or without recompute), on <paramref name="model"/>.</summary>
    public static ITrainer NewTrainer(LlamaModel model, TrainingOptions options, TrainingMode mode, bool recompute = true) =>
        Trainers.Create(model, options, mode, recompute);

    /// <summary>Runs one step per batch and returns the metrics.</summary>
    public static List<StepMetrics> Run(ITrainer trainer, IEnumerable<Batch> batches) => batches.Select(b => trainer.Step(b)).ToList();

    public static List<StepMetrics> Run(TrainingEngine engine, IEnumerable<Batch> batches) => batches.Select(b => engine.Step(b)).ToList();

    /// <summary>Every weight as fp32, in the model's parameter order (read through the model's weight source: its own
    /// tensors, or a training engine's store while one holds the model).</summary>
    public static float[] Weights(LlamaModel model)
    {
        using var scope = TensorScope.Enter();
        return model.Parameters.SelectMany(p =>
        {
            using StageWeights weights = model.UseWeights(p);
            return weights[p].To(DType.Float32).Contiguous().ToArray<float>();
        }).ToArray();
    }

    public static double MaxRelativeDifference(IReadOnlyList<double> a, IReadOnlyList<double> b) =>
        a.Zip(b, (x, y) => Math.Abs(x - y) / Math.Max(Math.Abs(y), 1e-30)).Max();

    public static double MaxAbsoluteDifference(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    /// <summary>A temporary directory under the system temp dir (O_DIRECT-capable on this machine), deleted on Dispose.</summary>
    public sealed class ScratchDirectory : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("finetune-train-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
