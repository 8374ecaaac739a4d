namespace FineTune.Trainer.Training.Adapters;

/// <summary>What `finetune bench lora` measured: the drive, the base's creation, each step, memory.</summary>
public sealed record AdapterBenchResult
{
    public required long BaseParameterCount { get; init; }
    public required long BaseByteCount { get; init; }
    public required long TrainedParameterCount { get; init; }
    /// <summary>The faster of the two sequential read measurements: the floor uses it.</summary>
    public required double ReadBytesPerSecond { get; init; }
    public required double ReadBytesPerSecondBefore { get; init; }
    public required double ReadBytesPerSecondAfter { get; init; }
    public required double WriteBytesPerSecond { get; init; }
    public required string BandwidthEngine { get; init; }
    public required double FillSeconds { get; init; }
    public required IReadOnlyList<StepMetrics> Steps { get; init; }
    public required long PlannedHostByteCount { get; init; }
    public required long PeakResidentByteCount { get; init; }
    public required long ResidentBeforeEngineByteCount { get; init; }
    public required long MemoryTotalByteCount { get; init; }
    public required long MemoryAvailableByteCount { get; init; }
    public required string BaseLocation { get; init; }

    /// <summary>Base bytes read per step: the mean over the measured steps.</summary>
    public double BaseBytesPerStep => Steps.Average(s => (double)s.Traffic.WeightReadBytes);

    /// <summary>The step can be no faster than reading its base bytes at the drive's measured sequential rate.</summary>
    public double FloorSecondsPerStep => BaseBytesPerStep / ReadBytesPerSecond;

    public double SecondsPerStep => Steps.Average(s => s.Seconds);

    public double TokensPerSecond => Steps.Sum(s => (double)s.TokenCount) / Steps.Sum(s => s.Seconds);

    /// <summary>Tokens per second if a step took only its base reads.</summary>
    public double FloorTokensPerSecond => Steps.Average(s => (double)s.TokenCount) / FloorSecondsPerStep;
}
