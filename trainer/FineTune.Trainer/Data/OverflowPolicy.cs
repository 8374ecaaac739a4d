namespace FineTune.Trainer.Data;

/// <summary>What happens to a sample with more than sequence length + 1 ids (more training positions than fit).</summary>
public enum OverflowPolicy
{
    /// <summary>Keep the first sequence length + 1 ids (the default for instruction and chat data).</summary>
    Truncate,
    /// <summary>Cut into consecutive pieces that overlap by one id, so no training position is lost (default for text).</summary>
    Split,
    /// <summary>Leave the sample out.</summary>
    Drop,
}
