namespace FineTune.IO.Bench;

/// <summary>fio's sequential bandwidth (bytes/s) per round on the same directory, or why it is missing, and the commands.</summary>
public sealed record FioResult(IReadOnlyList<double> WriteBytesPerSecond, IReadOnlyList<double> ReadBytesPerSecond, IReadOnlyList<string> Commands, string? Problem)
{
    public double? MedianWriteBytesPerSecond => IoBenchReport.Median(WriteBytesPerSecond);

    public double? MedianReadBytesPerSecond => IoBenchReport.Median(ReadBytesPerSecond);
}
