namespace FineTune.Offload.Optimizer;

/// <summary>
/// Saved optimizer states that fail their checks (an extent's CRC, a truncated file): a user error whose
/// <see cref="Problem"/> ("fails its CRC-32C check in extent 2 ...") the resume puts into its one damage sentence,
/// with the checkpoint named and the previous one offered.
/// </summary>
public sealed class DamagedStatesException(string problem, string message, string? dataPath = null) : UserErrorException(message)
{
    public string Problem { get; } = problem;

    /// <summary>The states file the problem is in (one of several when each data-parallel rank saved its own); null: the only one.</summary>
    public string? DataPath { get; } = dataPath;
}
