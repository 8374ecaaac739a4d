using System.Globalization;
using FineTune.Cli.Tests.Models;
using Xunit;

namespace FineTune.Cli.Tests.Training;

/// <summary>
/// `finetune bench lora` on a small shape: it measures the drive, generates the base onto it, trains, and prints
/// tokens/s next to the base-read floor with their ratio, VmHWM next to the plan, and leaves no file behind.
/// </summary>
[Collection(ConsoleCaptureCollection.Name)]
public sealed class BenchLoraCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("finetune-bench-lora-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void PrintsTokensPerSecondAgainstTheBaseReadFloorAndCleansUp()
    {
        var (code, output, error) = CliRunner.Run("bench", "lora", "--nvme", _directory, "--layers", "2", "--hidden", "64", "--intermediate", "128",
            "--heads", "4", "--vocab", "128", "--steps", "2", "--bandwidth-gib", "0.0625");
        Assert.True(code == ExitCodes.Success, error);
        string ratioLine = output.Split('\n').Single(l => l.StartsWith("tokens/s vs floor", StringComparison.Ordinal));
        double ratio = double.Parse(ratioLine[(ratioLine.LastIndexOf("ratio ", StringComparison.Ordinal) + 6)..].Trim(), CultureInfo.InvariantCulture);
        Assert.True(ratio > 0, ratioLine);
        Assert.Contains("base                   98,624 parameters (2 layers, C 64, V 128), bf16", output); // 2 x 128 x 64 + 2 x (4 x 64 x 64 + 3 x 64 x 128 + 2 x 64) + 64
        Assert.Contains("host memory            VmHWM", output);
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }
}
