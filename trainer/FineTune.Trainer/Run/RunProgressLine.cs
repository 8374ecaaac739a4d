using System.Globalization;

namespace FineTune.Trainer.Runs;

/// <summary>
/// What one progress line shows. <see cref="Format(int)"/> fits a width: a live line that wraps leaves a stale copy
/// behind on every update, so fields are dropped, least useful first (io, host, lr, tok/s, eta), and as a last
/// resort the line is cut; step and loss always stay.
/// </summary>
public sealed record RunProgressLine(long Step, long TotalSteps, double Loss, double LearningRate, double TokensPerSecond,
    double IoBytesPerSecond, long HostResidentByteCount, long? HostBudgetByteCount, TimeSpan Eta)
{
    public const int UnlimitedWidth = int.MaxValue;

    public string Format() => Format(UnlimitedWidth);

    public string Format(int maxWidth)
    {
        string host = HostBudgetByteCount is long budget ? $"{Gib(HostResidentByteCount)}/{Gib(budget)} GiB" : $"{Gib(HostResidentByteCount)} GiB";
        // (priority, text): the lowest priority goes first when the line is too wide; the order on the line stays
        var fields = new List<(int Priority, string Text)>
        {
            (9, F($"step {Step}/{TotalSteps}")),
            (8, F($"loss {Loss:0.0000}")),
            (4, F($"lr {LearningRate:0.###e+0}")),
            (5, F($"{TokensPerSecond:0} tok/s")),
            (1, F($"io {IoBytesPerSecond / 1e9:0.00} GB/s")),
            (3, $"host {host}"),
            (6, F($"eta {Eta:hh\\:mm\\:ss}")),
        };
        string line = string.Join("  ", fields.Select(f => f.Text));
        while (line.Length > maxWidth && fields.Count > 2)
        {
            fields.Remove(fields.MinBy(f => f.Priority));
            line = string.Join("  ", fields.Select(f => f.Text));
        }
        return line.Length > maxWidth ? line[..Math.Max(0, maxWidth)] : line;
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture);

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
