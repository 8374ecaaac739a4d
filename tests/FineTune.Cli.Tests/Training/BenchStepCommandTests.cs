using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using FineTune.Cli;
using FineTune.Cli.Tests.Models;
using Xunit;

namespace FineTune.Cli.Tests.Training;

/// <summary>
/// `finetune bench step` end to end on a tiny model: every configuration is reported with its time split, the
/// ratio lines are printed, and offloaded and in-memory training agree on the loss. No timing is asserted.
/// </summary>
[Collection(ConsoleCaptureCollection.Name)]
public sealed partial class BenchStepCommandTests
{
    [Fact]
    public void ReportsEveryConfigurationAndTheSameLosses()
    {
        string directory = Directory.CreateTempSubdirectory("finetune-bench-step-").FullName;
        try
        {
            var (code, stdout, stderr) = Run("bench", "step", "--nvme", directory, "--layers", "2", "--hidden", "32", "--intermediate", "64",
                "--heads", "4", "--vocab", "64", "--batch", "1", "--seq", "8", "--steps", "1");
            Assert.True(code == 0, stderr);
            foreach (string name in new[] { "in-memory ", "offloaded ", "offloaded, no overlap ", "in-memory, no recompute ", "offloaded, params nvme " })
                Assert.Matches($"(?m)^{name} +[0-9,]+ tokens/s, step .* = compute .* \\+ read wait .* \\+ write wait .* \\+ optimizer ", stdout);
            Assert.Contains("offloaded / in-memory  tokens/s ratio", stdout);
            Assert.Contains("overlap with backward  step time without / with =", stdout);
            Assert.Contains("activations: host 0 + nvme 2", stdout);
            double difference = double.Parse(LossDifference().Match(stdout).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.True(difference < 1e-6, stdout);
            Assert.Contains("weights: nvme (", stdout);
            // parameter offload changes where the weights live, not the arithmetic
            Assert.Matches(@"params on nvme .* max relative loss difference vs offloaded 0\.0e\+0", stdout);
            Assert.Empty(Directory.GetFiles(directory)); // swap and bandwidth files are removed
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void AMissingNvmeDirectoryIsAUserError()
    {
        var (code, _, stderr) = Run("bench", "step", "--nvme", "/nonexistent/finetune-bench");
        Assert.Equal(ExitCodes.UserError, code);
        Assert.Contains("--nvme /nonexistent/finetune-bench does not exist", stderr);
    }

    [GeneratedRegex(@"max relative loss difference offloaded vs in-memory over \d+ steps: ([0-9.eE+-]+)")]
    private static partial Regex LossDifference();

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var root = new RootCommand("test");
        foreach (Command command in CommandList.All())
            root.Subcommands.Add(command);
        TextWriter oldOut = Console.Out, oldErr = Console.Error;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (ExitCodes.Run(root, args), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
