namespace FineTune.Trainer.Training.Baselines;

/// <summary>Which trainer <see cref="Trainers.Create"/> builds: FineTune's engine or the plain in-memory baseline.</summary>
public enum TrainingMode
{
    /// <summary>The <see cref="TrainingEngine"/>: pool, parameter store, swap, partitioned optimizer.</summary>
    Offloaded,

    /// <summary>Everything in ordinary tensors, libtorch's AdamW: the comparison baseline (<see cref="InMemoryTrainer"/>).</summary>
    InMemory,
}
