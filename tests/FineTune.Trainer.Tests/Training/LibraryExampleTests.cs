using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Models;
using FineTune.Trainer.Tokenizers;
using FineTune.Trainer.Training;
using Xunit;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// How to use the training engine in your own loop: load (here: create) a model, build the engine with budgets and
/// tiers, call Step per batch, read the metrics. Also a test: the loss must fall and the bytes must move.
/// </summary>
public sealed class LibraryExampleTests
{
    [Fact]
    public void TrainATinyModelInYourOwnLoop()
    {
        string nvmeDirectory = Directory.CreateTempSubdirectory("finetune-example-").FullName;
        try
        {
            // 1. A model. With real weights: LlamaModel.Load("/path/to/hf-folder", DType.Float32, Device.Cpu).
            var config = new LlamaConfig
            {
                ModelType = "llama", VocabSize = 259, HiddenSize = 32, IntermediateSize = 64, LayerCount = 2,
                HeadCount = 4, KvHeadCount = 4, HeadDim = 8,
            };
            using LlamaModel model = LlamaModel.Create(config, seed: 1, DType.Float32, Device.Cpu);

            // 2. Data: any source of Batch (B, T) works; here the synthetic reverse task with the byte tokenizer.
            var records = new SyntheticTask(SyntheticTaskKind.Reverse).Generate(200, seed: 5)
                .Select((r, i) => new DataRecord($"synthetic:{i}", null, r, null)).ToList();
            var dataset = TokenizedDataset.Build(records, new ByteTokenizer(), new DatasetOptions(32, Template: InstructionTemplate.Compact));
            var loader = new DataLoader(dataset, new DataLoaderOptions(BatchSize: 4, SequenceLength: 32, Seed: 1, Pack: true, PadId: ByteTokenizer.Pad));

            // 3. The engine: optimizer states and activation checkpoints on NVMe, a 64 MiB host budget, warmup + cosine.
            var options = new TrainingOptions
            {
                MicroBatchSize = 4,
                SequenceLength = 32,
                Precision = PrecisionMode.Float32,
                AdamW = new() { LearningRate = 3e-3, WeightDecay = 0.0, MaxGradNorm = 1.0 },
                Schedule = new LearningRateSchedule(ScheduleKind.Cosine, peakLr: 3e-3, warmupSteps: 3, totalSteps: 30),
                OptimizerTier = StateTier.Nvme,
                NvmeActivationLayers = -1,
                NvmeDirectory = nvmeDirectory,
                HostBudgetByteCount = 64L << 20,
            };
            using var engine = new TrainingEngine(model, options);

            // 4. Your loop: one Step per batch (or per list of micro-batches for gradient accumulation).
            var losses = new List<double>();
            for (int step = 0; step < 30; step++)
            {
                StepMetrics m = engine.Step(loader.Next());
                losses.Add(m.Loss);
                // m.GradientNorm, m.LearningRate, m.TokensPerSecond, m.BytesRead, m.BytesWritten, m.ComputeSeconds,
                // m.ReadWaitSeconds, m.WriteWaitSeconds, m.OptimizerSeconds, m.PoolPeakInUseByteCount, m.PeakResidentByteCount
                Assert.True(m.BytesWritten > 0 && m.PoolPeakInUseByteCount <= options.HostBudgetByteCount);
            }

            // 5. Checkpointing hooks: engine.StepCount, engine.LossScaler, engine.SaveOptimizerState(dir).
            Assert.Equal(30, engine.StepCount);
            Assert.True(losses.Skip(25).Average() < losses.Take(5).Average() - 1.0, $"loss {losses[0]:0.000} -> {losses[^1]:0.000}");
        }
        finally
        {
            Directory.Delete(nvmeDirectory, recursive: true);
        }
    }
}
