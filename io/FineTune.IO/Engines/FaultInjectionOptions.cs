namespace FineTune.IO.Engines;

/// <summary>What <see cref="FaultInjectingIoEngine"/> injects, each a probability in [0, 1].</summary>
public sealed record FaultInjectionOptions
{
    /// <summary>Seed of the fault sequence (deterministic per thread interleaving).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Per submission: hand the kernel only a random sector-aligned prefix, forcing a short transfer.</summary>
    public double ShortTransferProbability { get; init; }

    /// <summary>Per completion: replace the result with -EAGAIN, forcing a retry (the data may already have moved).</summary>
    public double TransientErrorProbability { get; init; }

    /// <summary>Per completion: replace the result with -<see cref="ErrorErrno"/>, failing the request.</summary>
    public double ErrorProbability { get; init; }

    /// <summary>The errno of injected permanent errors: EIO (5) by default; ENOSPC (28) yields DiskFullException.</summary>
    public int ErrorErrno { get; init; } = 5;

    /// <summary>Per request: wait up to <see cref="MaxDelay"/> before submitting.</summary>
    public double DelayProbability { get; init; }

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(2);
}
