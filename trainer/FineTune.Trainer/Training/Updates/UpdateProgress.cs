namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// How far an ascending update has got, as a watermark in the flat parameter space: every element below
/// <see cref="Watermark"/> has its new weights in place (written, for weights on NVMe). Sub-groups may finish their
/// writes out of order; the watermark moves over the contiguous prefix of finished ones. The next forward waits on it
/// stage by stage. A failed update releases every waiter with its error.
/// Thread-safe (completed from the optimizer's task and write completions, waited on by the compute thread).
/// </summary>
internal sealed class UpdateProgress
{
    private readonly object _lock = new();
    private readonly IReadOnlyList<(long First, long End)> _groups;
    private readonly bool[] _done;
    private int _next;
    private Exception? _failure;

    public UpdateProgress(IReadOnlyList<(long First, long End)> groups)
    {
        _groups = groups;
        _done = new bool[groups.Count];
    }

    /// <summary>The progress of an update over <paramref name="groups"/> (a sub-group's index is its place here).</summary>
    public static UpdateProgress Over(IEnumerable<FineTune.Offload.Optimizer.SubGroup> groups) =>
        new(groups.Select(g => (g.FirstElement, g.FirstElement + g.ElementCount)).ToList());

    public long Watermark { get; private set; }

    /// <summary>Completes <paramref name="group"/> once its weight write is done, or fails with the write's error.</summary>
    public void CompleteWhenWritten(FineTune.Offload.Optimizer.SubGroup group, Task written) =>
        written.ContinueWith(w =>
        {
            if (w.IsFaulted)
                Fail(w.Exception!.InnerException!);
            else
                Complete(group.Index);
        }, TaskContinuationOptions.ExecuteSynchronously);

    public void Complete(int group)
    {
        lock (_lock)
        {
            _done[group] = true;
            while (_next < _done.Length && _done[_next])
                Watermark = _groups[_next++].End;
            Monitor.PulseAll(_lock);
        }
    }

    public void Fail(Exception error)
    {
        lock (_lock)
        {
            _failure ??= error;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>True when every element below <paramref name="end"/> is updated.</summary>
    public bool IsDone(long end)
    {
        lock (_lock)
            return Watermark >= end;
    }

    /// <summary>Blocks until every element below <paramref name="end"/> is updated; rethrows the update's failure.</summary>
    public void WaitFor(long end)
    {
        lock (_lock)
        {
            while (Watermark < end && _failure is null)
                Monitor.Wait(_lock);
            if (Watermark < end && _failure is not null)
                throw new InvalidOperationException("The previous step's optimizer update failed; see the inner exception.", _failure);
        }
    }
}
