namespace FineTune.Trainer.Training;

/// <summary>
/// How far backward has finalised the gradients, as a boundary in the flattened parameter order: every element at
/// or after <see cref="Boundary"/> has its last micro-batch's gradient accumulated. Backward runs from the top of
/// the model and parameters are flattened from the bottom, so the boundary only moves down. The overlapped
/// optimizer awaits <see cref="WaitAsync"/> per sub-group; a failed backward releases every waiter with its error.
/// Thread-safe (advanced by the compute thread, awaited by the optimizer task).
/// </summary>
internal sealed class GradientReadiness
{
    private readonly object _lock = new();
    private readonly List<(long FirstElement, TaskCompletionSource Done)> _waiters = new();
    private Exception? _failure;

    public GradientReadiness(long elementCount) => Boundary = elementCount;

    public long Boundary { get; private set; }

    /// <summary>Completes when the element <paramref name="firstElement"/> and everything after it are final.</summary>
    public Task WaitAsync(long firstElement)
    {
        lock (_lock)
        {
            if (_failure is not null)
                return Task.FromException(_failure);
            if (firstElement >= Boundary)
                return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((firstElement, done));
            return done.Task;
        }
    }

    public void Advance(long boundary)
    {
        lock (_lock)
        {
            Boundary = Math.Min(Boundary, boundary);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].FirstElement < Boundary)
                    continue;
                _waiters[i].Done.SetResult();
                _waiters.RemoveAt(i);
            }
        }
    }

    public void Fail(Exception error)
    {
        lock (_lock)
        {
            _failure = error;
            foreach (var (_, done) in _waiters)
                done.SetException(error);
            _waiters.Clear();
        }
    }
}
