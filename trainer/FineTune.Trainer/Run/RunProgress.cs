namespace FineTune.Trainer.Runs;

/// <summary>
/// The run's progress output. On a terminal: one live line rewritten in place after every step (step/total, loss,
/// lr, tokens/s, I/O GB/s, host memory, ETA), drawn by the renderer the CLI gives (Spectre.Console). Otherwise (CI, files, tests):
/// plain lines every logging.log_every_steps steps, no escape codes. Messages (checkpoints saved, eval) are printed
/// on their own line in both modes.
/// </summary>
public sealed class RunProgress
{
    private readonly TextWriter _out;
    private readonly Action<string>? _liveRender;
    private readonly int _plainEverySteps;
    private readonly Func<int> _liveWidth;
    private bool _lineOpen;

    /// <param name="liveRender">Draws the live line in place (terminal); null: plain periodic lines on <paramref name="output"/>.</param>
    /// <param name="liveWidth">The columns the live line may take, asked at every update (the terminal may be resized).</param>
    public RunProgress(TextWriter output, Action<string>? liveRender, int plainEverySteps, Func<int>? liveWidth = null)
    {
        _liveWidth = liveWidth ?? (() => RunProgressLine.UnlimitedWidth);
        _out = output;
        _liveRender = liveRender;
        _plainEverySteps = Math.Max(1, plainEverySteps);
    }

    public void Step(RunProgressLine line)
    {
        if (_liveRender is not null)
        {
            _liveRender(line.Format(_liveWidth()));
            _lineOpen = true;
            return;
        }
        if (line.Step % _plainEverySteps == 0 || line.Step == line.TotalSteps || line.Step == 1)
            _out.WriteLine(line.Format());
    }

    public void Message(string text)
    {
        EndLine();
        _out.WriteLine(text);
    }

    public void EndLine()
    {
        if (_lineOpen)
            _out.WriteLine();
        _lineOpen = false;
    }
}
