namespace FineTune.Trainer.Recipes;

/// <summary>dataset.format: how dataset.path is read.</summary>
public enum DatasetFormat
{
    Text,
    Alpaca,
    Chat,
    Synthetic,
}
