using ScottPlot;

namespace FineTune.Trainer.Plots;

/// <summary>
/// The PNG of one or several runs, side by side (one panel per run, same size): train loss per step as a line,
/// eval loss as points on the same axis, and the learning rate dashed on a right-hand axis. Drawn by ScottPlot 5
/// through SkiaSharp, headless (no display needed).
/// </summary>
public static class LossPlot
{
    public const string FileName = "loss.png";
    private const int PanelWidth = 640, Height = 420;

    public static void Save(IReadOnlyList<RunHistory> runs, string pngPath)
    {
        if (runs.Count == 0)
            throw new ArgumentException("at least one run", nameof(runs));
        var multiplot = new Multiplot();
        multiplot.AddPlots(runs.Count);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        for (int i = 0; i < runs.Count; i++)
            Draw(multiplot.GetPlot(i), runs[i]);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (folder is not null)
            Directory.CreateDirectory(folder);
        multiplot.SavePng(pngPath, PanelWidth * runs.Count, Height);
    }

    private static void Draw(Plot plot, RunHistory run)
    {
        double[] steps = run.Train.Select(p => (double)p.Step).ToArray();
        var loss = plot.Add.ScatterLine(steps, run.Train.Select(p => p.Loss).ToArray());
        loss.LegendText = "train loss";
        if (run.Eval.Count > 0)
        {
            var eval = plot.Add.ScatterPoints(run.Eval.Select(p => (double)p.Step).ToArray(), run.Eval.Select(p => p.Loss).ToArray());
            eval.LegendText = "eval loss";
            eval.MarkerSize = 8;
        }
        var lr = plot.Add.ScatterLine(steps, run.Train.Select(p => p.LearningRate).ToArray());
        lr.Axes.YAxis = plot.Axes.Right;
        lr.LinePattern = LinePattern.Dashed;
        lr.LegendText = "learning rate";
        plot.Axes.Left.Label.Text = "loss";
        plot.Axes.Right.Label.Text = "learning rate";
        plot.Axes.Bottom.Label.Text = "step";
        plot.Title(run.Name);
        plot.ShowLegend(Alignment.UpperRight);
    }
}
