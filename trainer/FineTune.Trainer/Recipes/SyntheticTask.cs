namespace FineTune.Trainer.Recipes;

/// <summary>dataset.synthetic.task: the generated sequence-to-sequence task.</summary>
public enum SyntheticTask
{
    Copy,
    Reverse,
}
