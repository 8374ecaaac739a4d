namespace FineTune.Torch.Distributed;

/// <summary>
/// Heartbeats in the store, so a failed collective can name the rank that caused it. Gloo only says "connection
/// closed by peer 127.0.0.1:40213" or "timed out"; the store knows ranks. Every rank bumps the counter
/// KeyPrefix + "heartbeat/" + rank once per interval on a thread of its own (a rank busy computing still beats;
/// a rank that died, was stopped or is wedged does not). After a failure, <see cref="Diagnose"/> reads every
/// counter, waits three intervals and reads again: the ranks whose counters did not move stopped answering.
/// The watch has its own store connection with a short timeout, so a store that stopped answering (its rank 0
/// died or hangs) is reported within seconds instead of after the group's timeout.
/// </summary>
internal sealed class PeerWatch : IDisposable
{
    private readonly TcpStore _store;
    private readonly string _prefix;
    private readonly int _rank;
    private readonly int _worldSize;
    private readonly TimeSpan _interval;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _stop = new(false);

    public PeerWatch(string host, int port, string prefix, int rank, int worldSize, TimeSpan interval)
    {
        _prefix = prefix;
        _rank = rank;
        _worldSize = worldSize;
        _interval = interval;
        TimeSpan storeTimeout = interval * 3 > TimeSpan.FromSeconds(3) ? interval * 3 : TimeSpan.FromSeconds(3);
        _store = TcpStore.Connect(host, port, worldSize, storeTimeout);
        _thread = new Thread(Beat) { IsBackground = true, Name = $"finetune-heartbeat-rank{rank}" };
        _thread.Start();
    }

    /// <summary>Which ranks stopped answering: a clause that completes "failed because ...", and those ranks.</summary>
    public (string Reason, IReadOnlyList<int> Suspects) Diagnose(TimeSpan groupTimeout)
    {
        long[] before, after;
        try
        {
            before = ReadCounters();
            Thread.Sleep(_interval * 3);
            after = ReadCounters();
        }
        catch (TorchException)
        {
            return (_rank == 0
                ? "its own rendezvous store stopped answering (the process is shutting down)"
                : $"rank 0, which serves the rendezvous store at {_store.Host}:{_store.Port}, stopped answering (it died or hangs; see its output)", [0]);
        }
        var silent = Enumerable.Range(0, _worldSize).Where(r => r != _rank && after[r] == before[r]).ToList();
        if (silent.Count > 0)
            return ($"{RankList(silent)} stopped answering (died or hangs; see {(silent.Count == 1 ? "its" : "their")} log)", silent);
        return ($"every other rank is still alive, so one of them is slower than the {groupTimeout.TotalSeconds:0.#} s timeout or ran a different collective; raise the timeout or check that every rank runs the same steps", []);
    }

    /// <summary>"rank 1" or "ranks 1, 3".</summary>
    internal static string RankList(IReadOnlyList<int> ranks) =>
        ranks.Count == 1 ? $"rank {ranks[0]}" : $"ranks {string.Join(", ", ranks)}";

    private long[] ReadCounters()
    {
        var counters = new long[_worldSize];
        for (int r = 0; r < _worldSize; r++)
            counters[r] = _store.Add(_prefix + "heartbeat/" + r, 0);
        return counters;
    }

    private void Beat()
    {
        do
        {
            try
            {
                _store.Add(_prefix + "heartbeat/" + _rank, 1);
            }
            catch (TorchException)
            {
                // The store is gone (rank 0 ended or died); Diagnose reports that when a collective fails.
            }
        }
        while (!_stop.Wait(_interval));
    }

    public void Dispose()
    {
        _stop.Set();
        // Each beat is bounded by the watch's store timeout; a thread still inside the native call after that keeps
        // the store (a small leak) rather than have it freed under its feet.
        if (!_thread.Join(_store.Timeout + TimeSpan.FromSeconds(1)))
            return;
        _store.Dispose();
        _stop.Dispose();
    }
}
