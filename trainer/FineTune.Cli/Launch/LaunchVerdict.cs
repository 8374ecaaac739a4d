namespace FineTune.Cli.Launch;

/// <summary>
/// The launcher's exit code and its one sentence, from how the ranks ended. The first rank to fail in time is the
/// cause; the others failed because of it (a peer that died ends its neighbours' collectives) or were killed by
/// the launcher afterwards. A rank killed by a signal is named with the signal; a rank that exited with 2 already
/// wrote the sentence (it names the rank that stopped answering), which is passed on; exit 1 is a bug in FineTune.
/// Every rank ending with 130 (Ctrl-C or SIGTERM, checkpoint saved) is an interrupted run, as with one process.
/// </summary>
internal static class LaunchVerdict
{
    public static (int ExitCode, string? Sentence) Of(IReadOnlyList<RankExit> exits)
    {
        RankExit? cause = exits
            .Where(e => !e.KilledByLauncher && e.ExitCode != ExitCodes.Success && e.ExitCode != Commands.RunCommand.InterruptedExitCode)
            .OrderBy(e => e.EndedAt).ThenBy(e => e.Rank)
            .FirstOrDefault();
        if (cause is null)
            return (exits.Any(e => e.ExitCode == Commands.RunCommand.InterruptedExitCode) ? Commands.RunCommand.InterruptedExitCode : ExitCodes.Success, null);
        string stopped = exits.Count == 2 ? "the other rank was stopped" : "the other ranks were stopped";
        return cause.ExitCode switch
        {
            ExitCodes.Bug => (ExitCodes.Bug, $"rank {cause.Rank} hit an internal error (a bug in FineTune, please report it) and {stopped}; its stack trace is in {cause.LogPath}."),
            ExitCodes.UserError => (ExitCodes.UserError, Relay(cause, exits)),
            > 128 and < 160 => (ExitCodes.UserError, $"rank {cause.Rank} died (killed by {SignalName(cause.ExitCode - 128)}) and {stopped}; its output is in {cause.LogPath}."),
            _ => (ExitCodes.UserError, $"rank {cause.Rank} exited with code {cause.ExitCode} and {stopped}; its output is in {cause.LogPath}."),
        };
    }

    /// <summary>The rank's own sentence, which names the rank when it is about a peer. A user error every rank
    /// gave alike (a refused recipe) is passed on as it is; one only this rank gave (its nvme_dir is full) gets
    /// the rank in front.</summary>
    private static string Relay(RankExit cause, IReadOnlyList<RankExit> exits)
    {
        if (cause.LastError is not string sentence)
            return $"rank {cause.Rank} failed (exit code 2) without saying why; its output is in {cause.LogPath}.";
        bool everyRankSaidIt = exits.All(e => e.LastError == sentence);
        return sentence.StartsWith("rank ", StringComparison.Ordinal) || cause.Rank == 0 || everyRankSaidIt ? sentence : $"rank {cause.Rank}: {sentence}";
    }

    internal static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => $"signal {signal}",
    };
}
