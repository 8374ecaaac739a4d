using System.Buffers.Binary;
using FineTune.Trainer.Plots;
using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Plots;

/// <summary>Run logs read back into curves (last line of a step wins, a cut line skipped) and drawn into a PNG.</summary>
public sealed class LossPlotTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("finetune-plot-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Run(string name)
    {
        string run = Path.Combine(_folder, name);
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, RunMetricsLog.FileName), """
            {"step":1,"loss":4.5,"lr":0.001,"tokens":10}
            {"step":2,"loss":3.0,"lr":0.002,"tokens":10}
            {"step":3,"loss":9.9,"lr":0.
            {"step":2,"loss":2.5,"lr":0.002,"tokens":10}
            {"step":3,"loss":2.0,"lr":0.0015,"tokens":10}

            """);
        File.WriteAllText(Path.Combine(run, RunMetricsLog.EvalFileName), "{\"step\":2,\"eval_loss\":2.75}\n{\"step\":3,\"eval_loss\":2.25}\n");
        return run;
    }

    [Fact]
    public void HistoryTakesTheLastLineOfEachStep()
    {
        RunHistory history = RunHistory.Read(Run("a"));
        Assert.Equal("a", history.Name);
        Assert.Equal([(1L, 4.5, 0.001), (2L, 2.5, 0.002), (3L, 2.0, 0.0015)], history.Train);
        Assert.Equal([(2L, 2.75), (3L, 2.25)], history.Eval);
    }

    [Fact]
    public void SeveralRunsArePanelsSideBySideInOnePng()
    {
        string png = Path.Combine(_folder, "out", "both.png");
        LossPlot.Save([RunHistory.Read(Run("a")), RunHistory.Read(Run("b"))], png);
        byte[] bytes = File.ReadAllBytes(png);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], bytes[..8]);
        Assert.Equal(2 * 640, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16))); // IHDR width
        Assert.Equal(420, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));      // IHDR height
    }

    [Fact]
    public void AFolderWithoutMetricsIsAUserError()
    {
        var e = Assert.Throws<UserErrorException>(() => RunHistory.Read(_folder));
        Assert.Contains("holds no metrics.jsonl", e.Message);
    }
}
