using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Baselines;

/// <summary>Builds the trainer a bench or test compares: the engine, or the in-memory baseline (with or without recompute).</summary>
public static class Trainers
{
    public static ITrainer Create(LlamaModel model, TrainingOptions options, TrainingMode mode, bool recompute = true) => mode switch
    {
        TrainingMode.Offloaded when recompute => new EngineTrainer(new TrainingEngine(model, options)),
        TrainingMode.Offloaded => throw new ArgumentException("the offloaded engine always checkpoints activations; recompute = false is for the in-memory baseline.", nameof(recompute)),
        _ => new InMemoryTrainer(model, options, recompute),
    };

    /// <summary>The engine behind <see cref="ITrainer"/>.</summary>
    private sealed class EngineTrainer(TrainingEngine engine) : ITrainer
    {
        public StepMetrics Step(IReadOnlyList<Data.Batch> microBatches) => engine.Step(microBatches);

        public long StepCount => engine.StepCount;

        public DynamicLossScaler? LossScaler => engine.LossScaler;

        public bool OverlapsOptimizer => engine.OverlapsOptimizer;

        public (string States, string Activations, string Weights) Locations => (engine.Optimizer.StateLocation, engine.ActivationLocation, engine.WeightLocation);

        public long PoolReservedByteCount => engine.PoolReservedByteCount;

        public string UpdateStrategy => engine.UpdateStrategy;

        public void Settle() => engine.Settle();

        public void Dispose() => engine.Dispose();
    }
}
