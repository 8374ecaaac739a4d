using System.Globalization;
using System.Text.RegularExpressions;
using FineTune.Cli.Tests.Run;
using Xunit;

namespace FineTune.Cli.Tests.Training;

/// <summary>
/// `finetune bench step --nproc 2` on a tiny model with real rank processes: rank 0 reports tokens/s of both ranks,
/// the collectives' seconds next to a c10d all-reduce measured in the same run, the eager baseline and a state
/// split that adds up to the 1-rank states. No timing is asserted.
/// </summary>
public sealed partial class BenchStepRanksTests
{
    [Fact]
    public void TwoRanksReportTokensPerRankCollectivesAgainstAnAllReduceAndTheStateSplit()
    {
        string directory = Directory.CreateTempSubdirectory("finetune-bench-ranks-").FullName;
        try
        {
            var (code, output) = FinetuneProcess.Run(TimeSpan.FromSeconds(120), "bench", "step", "--nvme", directory, "--nproc", "2", "--layers", "2", "--hidden", "32",
                "--intermediate", "64", "--heads", "4", "--vocab", "64", "--batch", "1", "--seq", "8", "--steps", "1", "--sub-group", "4096", "--timeout", "60");
            Assert.True(code == 0, output);
            Assert.Matches(@"(?m)^tokens/s per rank +0: [0-9,]+, 1: [0-9,]+; together [0-9,]+", output);
            Assert.Matches(@"(?m)^collectives per step +rank 0: reduce-scatter [0-9.]+ s \+ all-gather [0-9.]+ s \+ all-reduce [0-9.]+ s = ", output);
            Assert.Matches(@"(?m)^c10d all-reduce +of the fp32 gradient .* busbw [0-9.]+ GB/s; the aligned reduce-scatters \+ all-gathers take [0-9.]+x its time", output);
            Assert.Matches(@"(?m)^vs libtorch eager +one process on \d+ threads training the whole global batch in memory: [0-9,]+ tokens/s", output);
            Assert.Matches(@"(?m)^peak host memory +VmHWM per rank 0: [0-9.]+ GiB, 1: [0-9.]+ GiB", output);
            Match split = StateSplit().Match(output);
            Assert.True(split.Success, output);
            double share(int g) => double.Parse(split.Groups[g].Value, CultureInfo.InvariantCulture);
            Assert.Equal(1.0, share(1) + share(2), 2);
            Assert.Empty(Directory.GetFileSystemEntries(directory)); // swap files and the ranks' folders are gone
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [GeneratedRegex(@"state split .* \(0: ([0-9.]+), 1: ([0-9.]+)\)")]
    private static partial Regex StateSplit();
}
