namespace FineTune.Trainer.Data;

/// <summary>
/// What building a dataset did: records read, samples kept (after splitting), ids and trained labels in them, and
/// how many records were truncated, split, or dropped (too long under Drop, or nothing left to train on).
/// </summary>
public sealed record DatasetStatistics(int RecordCount, int SampleCount, long TokenCount, long TrainedTokenCount,
    int TruncatedCount, int SplitCount, int DroppedCount)
{
    public override string ToString() =>
        $"{RecordCount} records -> {SampleCount} samples, {TokenCount} tokens ({TrainedTokenCount} trained), " +
        $"{TruncatedCount} truncated, {SplitCount} split, {DroppedCount} dropped";
}
