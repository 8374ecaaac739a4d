namespace FineTune.Cli.Launch;

/// <summary>How one rank of a local launch ended: its exit code (128 + N when signal N ended it), when the launcher
/// saw it end, whether the launcher itself killed it, its last "error: " sentence and its log file.</summary>
internal sealed record RankExit(int Rank, int ExitCode, DateTime EndedAt, bool KilledByLauncher, string? LastError, string LogPath);
