namespace FineTune.Trainer.Recipes;

/// <summary>dataset.truncation: what happens to an example longer than dataset.seq_len.</summary>
public enum TruncationMode
{
    Truncate,
    Split,
    Drop,
}
