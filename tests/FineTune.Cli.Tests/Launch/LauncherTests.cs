using System.Diagnostics;
using System.Text.RegularExpressions;
using FineTune.Cli.Tests.Run;
using Xunit;

namespace FineTune.Cli.Tests.Launch;

/// <summary>
/// `--nproc N` end to end, with real child processes: ranks that finish, a rank killed with SIGKILL, a rank
/// stopped with SIGSTOP (a hang). The launcher must end in every case, name the rank in one sentence and leave no
/// rank running. Timeouts here are hang guards. Training runs over ranks: DataParallelRunTests.
/// </summary>
public sealed class LauncherTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(90);

    [Fact]
    public void TwoRanksRunTheCollectivesBenchAndRankZeroPrintsIt()
    {
        string logs = Directory.CreateTempSubdirectory("finetune-launch-").FullName;
        try
        {
            var (code, output) = FinetuneProcess.Run(s_guard, "bench", "collectives", "--nproc", "2", "--mib", "1", "--rounds", "2", "--log-dir", logs);
            Assert.True(code == 0, output);
            Assert.Matches(@"all_reduce +[0-9.]+ ms  algbw [0-9.]+ GB/s  busbw [0-9.]+ GB/s = [0-9.]+ of memory bandwidth", output);
            Assert.Contains("ranks                  2 on this machine over loopback Gloo", output);
            // Rank 1 ran the same bench (its progress is in its log) and printed nothing of rank 0's report.
            string rank1 = File.ReadAllText(Path.Combine(logs, "rank-1.log"));
            Assert.Contains("== finetune rank 1: bench collectives", rank1);
            Assert.DoesNotContain("ranks                  2", rank1);
        }
        finally
        {
            Directory.Delete(logs, recursive: true);
        }
    }

    [Theory]
    [InlineData("KILL")]
    [InlineData("STOP")]
    public void ARankThatDiesOrHangsEndsTheLaunchWithOneSentenceNamingIt(string signal)
    {
        string logs = Directory.CreateTempSubdirectory("finetune-launch-").FullName;
        try
        {
            int victim;
            int code;
            string output;
            using (var launch = new FinetuneProcess("bench", "collectives", "--nproc", "2", "--mib", "1", "--rounds", "1000000", "--timeout", "2", "--log-dir", logs))
            {
                victim = WaitForRankPid(launch, rank: 1);
                // Rank 0 is in the timed collectives once it announces the first one.
                WaitFor(launch, "all_reduce: 1 warm-up");
                using (Process.Start("kill", [$"-{signal}", victim.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                {
                }
                code = launch.WaitForExit(s_guard);
                output = launch.Output;
            }
            Assert.True(code == 2, output);
            string[] errors = output.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
            Assert.True(errors.Length == 1, output);
            if (signal == "KILL")
            {
                Assert.Equal($"error: rank 1 died (killed by SIGKILL) and the other rank was stopped; its output is in {logs}/rank-1.log.", errors[0].TrimEnd());
                // Rank 0 ended on its own and said why in its log, naming rank 1.
                Assert.Matches(@"error: rank 0 of 2: [a-z_]+( of [0-9,]+ float(32|64))? failed after [0-9.]+ s because rank 1 stopped answering", File.ReadAllText(Path.Combine(logs, "rank-0.log")));
            }
            else
            {
                // A stopped rank never exits: rank 0 timed out and named it, then the launcher killed it.
                Assert.Matches(@"^error: rank 0 of 2: [a-z_]+( of [0-9,]+ float(32|64))? failed after [0-9.]+ s because rank 1 stopped answering \(died or hangs; see its log\) \(gloo: .+\)\.$", errors[0].TrimEnd());
            }
            Assert.False(IsRunning(victim), $"rank 1 (pid {victim}) is still running after the launcher ended");
        }
        finally
        {
            Directory.Delete(logs, recursive: true);
        }
    }

    internal static int WaitForRankPid(FinetuneProcess launch, int rank)
    {
        WaitFor(launch, $"rank {rank}: pid ");
        Match m = Regex.Match(launch.Output, $@"rank {rank}: pid (\d+),");
        Assert.True(m.Success, launch.Output);
        return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static void WaitFor(FinetuneProcess launch, string text)
    {
        var clock = Stopwatch.StartNew();
        while (!launch.Output.Contains(text, StringComparison.Ordinal))
        {
            Assert.False(launch.HasExited, $"the launch ended before printing '{text}':\n{launch.Output}");
            Assert.True(clock.Elapsed < s_guard, $"'{text}' did not appear within {s_guard}:\n{launch.Output}");
            Thread.Sleep(50);
        }
    }

    /// <summary>Whether the pid is alive (not a zombie): /proc/PID/stat exists with a state other than Z or X.</summary>
    internal static bool IsRunning(int pid)
    {
        string stat = $"/proc/{pid}/stat";
        if (!File.Exists(stat))
            return false;
        string text = File.ReadAllText(stat);
        char state = text[text.LastIndexOf(')') + 2];
        return state is not ('Z' or 'X');
    }
}
