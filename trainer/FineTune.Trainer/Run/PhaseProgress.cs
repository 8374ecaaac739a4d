using System.Diagnostics;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Progress of one long phase of a run (creating a model, writing a checkpoint, verifying one on resume), in bytes:
/// a line every <see cref="Interval"/> at most, "creating the model: weights 2.1 of 6.4 GB (33%), 0:12 left", so a
/// multi-minute phase never looks hung; a phase that ends within the first interval prints nothing.
/// </summary>
public sealed class PhaseProgress
{
    private readonly Action<string> _output;
    private readonly string _what;
    private readonly Func<TimeSpan> _clock;
    private readonly TimeSpan _interval;
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private TimeSpan _lastLine;
    private string? _phase;
    private TimeSpan _phaseStart;

    /// <param name="output">Where lines go (the run's progress messages).</param>
    /// <param name="what">What is going on: "creating the model", "checkpoint step_3".</param>
    /// <param name="interval">Time between lines; 5 s unless given.</param>
    /// <param name="clock">Elapsed time (tests give their own); the phase's stopwatch unless given.</param>
    public PhaseProgress(Action<string> output, string what, TimeSpan? interval = null, Func<TimeSpan>? clock = null)
    {
        _output = output;
        _what = what;
        _interval = interval ?? TimeSpan.FromSeconds(5);
        _clock = clock ?? (() => _watch.Elapsed);
        _lastLine = TimeSpan.Zero;
    }

    public TimeSpan Interval => _interval;

    /// <summary>Lines printed so far.</summary>
    public int LineCount { get; private set; }

    /// <summary><paramref name="done"/> of <paramref name="total"/> bytes of <paramref name="phase"/> (a part of the whole: "weights", "optimizer states").</summary>
    public void Report(string phase, long done, long total)
    {
        TimeSpan now = _clock();
        if (phase != _phase)
        {
            _phase = phase;
            _phaseStart = now;
        }
        if (now - _lastLine < _interval || total <= 0 || done >= total)
            return;
        _lastLine = now;
        double seconds = (now - _phaseStart).TotalSeconds;
        double rate = seconds > 0 ? done / seconds : 0;
        string left = rate > 0 ? $", {Format(TimeSpan.FromSeconds((total - done) / rate))} left" : "";
        _output($"{_what}: {phase} {done / 1e9:0.0} of {total / 1e9:0.0} GB ({100.0 * done / total:0}%){left}");
        LineCount++;
    }

    /// <summary>A callback for one phase, for code that reports bytes only.</summary>
    public Action<long> For(string phase, long total) => done => Report(phase, done, total);

    private static string Format(TimeSpan span) =>
        span.TotalHours >= 1 ? $"{(int)span.TotalHours}:{span.Minutes:00}:{span.Seconds:00}" : $"{(int)span.TotalMinutes}:{span.Seconds:00}";
}
