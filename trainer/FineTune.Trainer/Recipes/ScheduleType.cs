namespace FineTune.Trainer.Recipes;

/// <summary>schedule.type: the learning-rate decay after warmup.</summary>
public enum ScheduleType
{
    Cosine,
    Linear,
    Constant,
}
