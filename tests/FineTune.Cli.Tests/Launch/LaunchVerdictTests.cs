using FineTune.Cli.Launch;
using Xunit;

namespace FineTune.Cli.Tests.Launch;

/// <summary>The launcher's one sentence and exit code from how its ranks ended.</summary>
public sealed class LaunchVerdictTests
{
    private static readonly DateTime s_t0 = new(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);

    private static RankExit Exit(int rank, int code, double seconds, bool killed = false, string? error = null) =>
        new(rank, code, s_t0.AddSeconds(seconds), killed, error, $"/runs/x/logs/rank-{rank}.log");

    [Fact]
    public void EveryRankFinishingIsSuccess() =>
        Assert.Equal((0, (string?)null), LaunchVerdict.Of([Exit(0, 0, 1), Exit(1, 0, 1.2)]));

    [Fact]
    public void EveryRankInterruptedIs130WithoutASentence() =>
        Assert.Equal((130, (string?)null), LaunchVerdict.Of([Exit(0, 130, 1), Exit(1, 130, 1)]));

    [Fact]
    public void AKilledRankIsTheCauseEvenWhenItsPeerAlsoFailed()
    {
        var (code, sentence) = LaunchVerdict.Of([Exit(0, 2, 3.5, error: "rank 0 of 2: all_reduce failed because rank 1 stopped answering"), Exit(1, 137, 0.5)]);
        Assert.Equal(2, code);
        Assert.Equal("rank 1 died (killed by SIGKILL) and the other rank was stopped; its output is in /runs/x/logs/rank-1.log.", sentence);
    }

    [Fact]
    public void AHungRankKilledByTheLauncherIsNamedByThePeerThatTimedOut()
    {
        string peer = "rank 0 of 3: all_reduce of 16 float32 failed after 3.0 s because rank 2 stopped answering (died or hangs; see its log) (gloo: Timed out)";
        var (code, sentence) = LaunchVerdict.Of([Exit(0, 2, 6, error: peer), Exit(1, 2, 6.1, error: "rank 1 of 3: ..."), Exit(2, 137, 11, killed: true)]);
        Assert.Equal((2, peer), (code, sentence));
    }

    [Fact]
    public void APlainUserErrorOfAnotherRankGetsTheRankInFront()
    {
        var (code, sentence) = LaunchVerdict.Of([Exit(0, 137, 9, killed: true), Exit(1, 2, 1, error: "offload.nvme_dir /nvme/swap-1 does not exist; create it.")]);
        Assert.Equal((2, "rank 1: offload.nvme_dir /nvme/swap-1 does not exist; create it."), (code, sentence));
    }

    [Fact]
    public void TheSameRefusalFromEveryRankIsPassedOnOnceWithoutARank()
    {
        const string refusal = "data-parallel training (world size 2) is not wired into the training engine yet; run with one process.";
        // Rank 1 happened to end first: the sentence is every rank's, so naming rank 1 would mislead.
        Assert.Equal((2, refusal), LaunchVerdict.Of([Exit(0, 2, 1.1, error: refusal), Exit(1, 2, 1.0, error: refusal)]));
    }

    [Fact]
    public void ABugInARankIsExitOneAndPointsAtItsStackTrace()
    {
        var (code, sentence) = LaunchVerdict.Of([Exit(0, 0, 1), Exit(1, 1, 2), Exit(2, 0, 1)]);
        Assert.Equal(1, code);
        Assert.Equal("rank 1 hit an internal error (a bug in FineTune, please report it) and the other ranks were stopped; its stack trace is in /runs/x/logs/rank-1.log.", sentence);
    }

    [Fact]
    public void ARankThatFailedSilentlyIsStillNamed()
    {
        Assert.Equal((2, "rank 0 failed (exit code 2) without saying why; its output is in /runs/x/logs/rank-0.log."), LaunchVerdict.Of([Exit(0, 2, 1), Exit(1, 0, 1)]));
        Assert.Equal((2, "rank 1 exited with code 3 and the other rank was stopped; its output is in /runs/x/logs/rank-1.log."), LaunchVerdict.Of([Exit(0, 0, 1), Exit(1, 3, 1)]));
    }
}
