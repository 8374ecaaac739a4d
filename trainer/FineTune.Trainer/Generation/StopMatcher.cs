namespace FineTune.Trainer.Generation;

/// <summary>
/// Watches generated ids for stop sequences (EOS, a template's multi-token end of turn): ids that might begin one
/// are held back, ids that cannot are passed on, and a completed stop sequence ends the generation without being
/// passed on, so a streamed answer never shows half of "&lt;|im_end|&gt;".
/// </summary>
internal sealed class StopMatcher(IReadOnlyList<int[]> stopSequences)
{
    private readonly List<int> _pending = [];

    /// <summary>The ids passed on so far.</summary>
    public List<int> Accepted { get; } = [];

    /// <summary>Adds an id; passes on what can no longer be part of a stop sequence; true when one completed.</summary>
    public bool Add(int id, Action<int>? onAccepted)
    {
        _pending.Add(id);
        while (_pending.Count > 0)
        {
            if (stopSequences.Any(s => s.Length == _pending.Count && s.AsSpan().SequenceEqual(_pending.ToArray())))
                return true;
            if (stopSequences.Any(s => s.Length > _pending.Count && s.AsSpan(0, _pending.Count).SequenceEqual(_pending.ToArray())))
                return false; // may still become a stop sequence: hold back
            Pass(_pending[0], onAccepted);
            _pending.RemoveAt(0);
        }
        return false;
    }

    /// <summary>Passes on the held-back ids (generation ended without completing a stop sequence).</summary>
    public void Flush(Action<int>? onAccepted)
    {
        foreach (int id in _pending)
            Pass(id, onAccepted);
        _pending.Clear();
    }

    private void Pass(int id, Action<int>? onAccepted)
    {
        Accepted.Add(id);
        onAccepted?.Invoke(id);
    }
}
