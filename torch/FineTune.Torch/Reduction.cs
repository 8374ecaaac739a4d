namespace FineTune.Torch;

/// <summary>How a loss combines per-element values. The numeric values are at::Reduction's codes.</summary>
public enum Reduction
{
    None = 0,
    Mean = 1,
    Sum = 2,
}
