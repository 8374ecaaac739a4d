using System.Globalization;

namespace FineTune.Trainer.Runs;

/// <summary>What one progress line shows.</summary>
public sealed record RunProgressLine(long Step, long TotalSteps, double Loss, double LearningRate, double TokensPerSecond,
    double IoBytesPerSecond, long HostResidentByteCount, long? HostBudgetByteCount, TimeSpan Eta)
{
    public string Format()
    {
        string host = HostBudgetByteCount is long budget ? $"{Gib(HostResidentByteCount)}/{Gib(budget)} GiB" : $"{Gib(HostResidentByteCount)} GiB";
        return string.Create(CultureInfo.InvariantCulture,
            $"step {Step}/{TotalSteps}  loss {Loss:0.0000}  lr {LearningRate:0.###e+0}  {TokensPerSecond:0} tok/s  io {IoBytesPerSecond / 1e9:0.00} GB/s  host {host}  eta {Eta:hh\\:mm\\:ss}");
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture);
}
