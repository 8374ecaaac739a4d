using System.Diagnostics;
using Xunit;

namespace FineTune.Cli.Tests.Tools;

/// <summary>
/// tools/gpu-check.sh --dry-run, as CI can run it: with nothing packed, the Release build stands in for the carried
/// app (FT_GPU_APP), and the dry run must pass against the current commands; it must refuse a budget the steps do not
/// fit, a flag this build does not accept, and a carried tarball that does not match its MANIFEST. (The real packed
/// folder is checked the same way by tools/gpu-pack.sh, which is too slow for the suite.)
/// </summary>
public sealed class GpuCheckDryRunTests : IDisposable
{
    private static readonly string Root = FindRoot();
    private readonly string _scratch = Directory.CreateTempSubdirectory("finetune-gpu-dry-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public void DryRunPassesAgainstTheBuiltCommands()
    {
        (int code, string output) = DryRun(("FT_GPU_CARRIED", Empty("carried")));
        Assert.True(code == 0, output);
        Assert.Contains("nothing packed", output);
        Assert.Contains("ok: the GPU test runner lists", output);
        Assert.Contains("ok: quickstart chain on the CPU", output);
        Assert.Contains("dry run: OK (steps' timeouts 460 s of 480 s)", output);
        Assert.Contains("0 problem(s)", File.ReadAllText(Path.Combine(_scratch, "out", "summary.txt")));
    }

    [Fact]
    public void DryRunRefusesABudgetTheStepsDoNotFit()
    {
        (int code, string output) = DryRun(("FT_GPU_CARRIED", Empty("carried")), ("FT_GPU_BUDGET_S", "300"));
        Assert.Equal(2, code);
        Assert.Contains("the steps' timeouts add up to 460 s, over the budget of 300 s", output);
    }

    [Fact]
    public void DryRunNamesABenchStepFlagThisBuildDoesNotAccept()
    {
        (int code, string output) = DryRun(("FT_GPU_CARRIED", Empty("carried")), ("FT_GPU_BENCH_STEP_ARGS", "--layers 2 --no-such-flag 1"));
        Assert.Equal(2, code);
        Assert.Contains("finetune bench step does not accept --no-such-flag", output);
        Assert.DoesNotContain("does not accept --layers", output);
    }

    [Fact]
    public void DryRunRefusesACarriedTarballThatDoesNotMatchItsManifest()
    {
        string carried = Empty("carried");
        File.WriteAllBytes(Path.Combine(carried, "finetune-linux-x64.tar.xz"), [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]);
        File.WriteAllText(Path.Combine(carried, "MANIFEST"), new string('0', 64) + "  finetune-linux-x64.tar.xz\n");
        (int code, string output) = DryRun(("FT_GPU_CARRIED", carried));
        Assert.Equal(2, code);
        Assert.Contains("finetune-linux-x64.tar.xz does not match", output);
    }

    private string Empty(string name) => Directory.CreateDirectory(Path.Combine(_scratch, name)).FullName;

    private (int Code, string Output) DryRun(params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Root };
        start.ArgumentList.Add(Path.Combine(Root, "tools", "gpu-check.sh"));
        start.ArgumentList.Add("--dry-run");
        start.ArgumentList.Add(Path.Combine(_scratch, "out"));
        start.Environment["FT_GPU_APP"] = Path.Combine(Root, "finetune");
        foreach ((string name, string value) in environment)
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "the dry run did not finish in 3 minutes");
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "tools", "gpu-check.sh")))
                return directory.FullName;
        }
        throw new InvalidOperationException($"no tools/gpu-check.sh above {AppContext.BaseDirectory}");
    }
}
