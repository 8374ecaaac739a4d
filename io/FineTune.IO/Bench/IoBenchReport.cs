namespace FineTune.IO.Bench;

/// <summary>Everything `finetune bench io` measured in one run (every round's passes, so medians can be shown).</summary>
public sealed record IoBenchReport(
    string Directory,
    bool IsDirect,
    int RoundCount,
    IReadOnlyList<IoBenchMeasurement> Engines,
    IReadOnlyList<IoBenchMeasurement> Sweep,
    FioResult Fio,
    CrcBenchResult Crc)
{
    /// <summary>(engine, operation) pairs in measurement order.</summary>
    public IReadOnlyList<(string Engine, string Operation)> Series =>
        Engines.Select(measurement => (measurement.Engine, measurement.Operation)).Distinct().ToList();

    public IReadOnlyList<double> Values(string engine, string operation) =>
        Engines.Where(measurement => measurement.Engine == engine && measurement.Operation == operation).Select(measurement => measurement.BytesPerSecond).ToList();

    /// <summary>Median of the values (mean of the middle two for an even count), null when empty.</summary>
    public static double? Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
            return null;
        double[] sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
