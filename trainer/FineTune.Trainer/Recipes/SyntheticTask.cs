namespace FineTune.Trainer.Recipes;

/// <summary>dataset.synthetic.task: the generated instruction task (Data.Synthetic.SyntheticTask generates it).</summary>
public enum SyntheticTask
{
    Reverse,
    Add,
}
