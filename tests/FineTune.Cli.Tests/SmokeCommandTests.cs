using System.Diagnostics;
using Xunit;

namespace FineTune.Cli.Tests;

/// <summary>
/// `finetune smoke` as a child process: it prints the BLAS libtorch resolved and the measured GEMM rates, and
/// libtorch's OpenMP threads start with the wait policy FineTune set before libtorch loaded. libgomp prints what it
/// parsed at its own start-up under OMP_DISPLAY_ENV=VERBOSE: GOMP_SPINCOUNT '0' is OMP_WAIT_POLICY=PASSIVE in force,
/// '300000' is libgomp's default spin (what a policy set after loading would leave).
/// </summary>
public sealed class SmokeCommandTests
{
    [Fact]
    public void SmokePrintsTheResolvedBlasAndTheGemmRates()
    {
        (int code, string output) = Smoke();
        Assert.True(code == 0, output);
        Assert.Matches(@"BLAS: \w+", output);
        Assert.Matches(@"GEMM 512\^3 on the CPU \(\d+ threads\): fp32 [0-9.]+ GFLOP/s, bf16 [0-9.]+ GFLOP/s", output);
        Assert.Contains("smoke: OK", output);
    }

    [Fact]
    public void OpenMpThreadsSleepWhileTheyWaitUnlessTheUserChoseAPolicy()
    {
        (int code, string output) = Smoke(("OMP_DISPLAY_ENV", "VERBOSE"));
        Assert.True(code == 0, output);
        Assert.Contains("GOMP_SPINCOUNT = '0'", output);
        Assert.Contains("OpenMP wait: PASSIVE (FineTune's default)", output);
        (code, output) = Smoke(("OMP_DISPLAY_ENV", "VERBOSE"), ("OMP_WAIT_POLICY", "ACTIVE"));
        Assert.True(code == 0, output);
        Assert.Contains("OMP_WAIT_POLICY = 'ACTIVE'", output);
        Assert.Contains("OpenMP wait: OMP_WAIT_POLICY=ACTIVE", output);
    }

    private static (int Code, string Output) Smoke(params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(CliRunner.RepositoryRoot(), "trainer", "FineTune.Cli", "bin", "Release", "net10.0", "finetune.dll"));
        start.ArgumentList.Add("smoke");
        start.Environment.Remove("OMP_WAIT_POLICY");
        start.Environment.Remove("GOMP_SPINCOUNT");
        foreach ((string name, string value) in environment)
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "finetune smoke did not finish in 2 minutes");
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
