namespace FineTune.Trainer.Data.Synthetic;

/// <summary>The checkable instruction tasks <see cref="SyntheticTask"/> generates.</summary>
public enum SyntheticTaskKind
{
    /// <summary>"reverse: abcde" -> "edcba" (3 to 8 lowercase letters).</summary>
    Reverse,
    /// <summary>"add: 37+45" -> "82" (two numbers of 1 or 2 digits).</summary>
    Add,
}
