using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// One TensorBoard event file, kept open for the whole run. Events are framed (TFRecord) on the caller's
/// thread and appended by a background thread through a bounded queue (a full queue blocks the caller rather
/// than growing without limit); the file is flushed every <c>flushInterval</c>, on <see cref="Flush"/> and at
/// <see cref="Dispose"/>. The first record is `brain.Event:2`, written and flushed before the constructor returns,
/// so an interrupted run still leaves a readable file. On resume at step T a SessionLog START at T follows it.
/// Name: events.out.tfevents.&lt;10-digit unix seconds&gt;.&lt;host&gt;.&lt;pid&gt;.&lt;uid&gt; so files sort by start time.
/// reference: FORMATS.md §1.1, §1.2, §1.4, §1.8 (tensorboard/summary/writer/event_file_writer.py).
/// This type does not know what a scalar is; <see cref="TrainingMetricsLogger"/> does.
/// </summary>
public sealed class EventFileWriter : IDisposable
{
    public const int DefaultQueueCapacity = 1024;
    private static int s_nextUid;

    private readonly FileStream _stream;
    private readonly BlockingCollection<Item> _queue;
    private readonly Thread _thread;
    private readonly TimeSpan _flushInterval;
    private volatile Exception? _failure;
    private bool _failureReported;
    private int _disposed;

    private sealed record Item(byte[]? Record, ManualResetEventSlim? Flushed);

    /// <summary>Creates <paramref name="directory"/> if needed and opens a new event file in it.</summary>
    /// <param name="resumeStep">When resuming at step T: writes SessionLog START at T after the version event.</param>
    public EventFileWriter(string directory, TimeSpan flushInterval, long? resumeStep = null,
        Func<double>? wallClockSeconds = null, int queueCapacity = DefaultQueueCapacity)
    {
        if (flushInterval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(flushInterval), "the flush interval must be positive.");
        Func<double> clock = wallClockSeconds ?? UnixSeconds;
        _flushInterval = flushInterval;
        double now = clock();
        try
        {
            Directory.CreateDirectory(directory);
            _stream = OpenNewFile(directory, now);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot create a TensorBoard event file in {directory} ({e.Message}); choose a writable output_dir.", e);
        }
        FilePath = _stream.Name;
        _stream.Write(TfRecord.Frame(EventEncoder.FileVersionEvent(now, resumeStep ?? 0)));
        if (resumeStep is long step)
            _stream.Write(TfRecord.Frame(EventEncoder.SessionStartEvent(now, step)));
        _stream.Flush();
        _queue = new BlockingCollection<Item>(queueCapacity);
        _thread = new Thread(WriteLoop) { IsBackground = true, Name = "tensorboard-writer" };
        _thread.Start();
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public string FilePath { get; }

    /// <summary>Seconds since the Unix epoch with millisecond resolution, as Python's time.time() gives.</summary>
    public static double UnixSeconds() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>Queues one serialized Event; blocks only while the queue is full.</summary>
    internal void Write(byte[] eventPayload)
    {
        ThrowIfUnusable();
        _queue.Add(new Item(TfRecord.Frame(eventPayload), null));
    }

    /// <summary>Waits until every queued event is in the file and the file is flushed to the OS.</summary>
    public void Flush()
    {
        ThrowIfUnusable();
        using var flushed = new ManualResetEventSlim();
        _queue.Add(new Item(null, flushed));
        flushed.Wait();
        ThrowIfFailed();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _queue.CompleteAdding();
        _thread.Join();
        try
        {
            if (_failure is null)
                _stream.Flush(flushToDisk: true);
        }
        catch (IOException e)
        {
            _failure = e;
        }
        finally
        {
            _stream.Dispose();
            _queue.Dispose();
        }
        ThrowIfFailed();
    }

    /// <summary>An exit without Dispose (SIGTERM, Environment.Exit) still writes and flushes what was queued.</summary>
    private void OnProcessExit(object? sender, EventArgs e)
    {
        try
        {
            Dispose();
        }
        catch (Exception)
        {
            // The process is ending; a failed last flush has nobody left to report to.
        }
    }

    private void WriteLoop()
    {
        var sinceFlush = Stopwatch.StartNew();
        bool dirty = false;
        while (true)
        {
            TimeSpan wait = _flushInterval - sinceFlush.Elapsed;
            bool took = _queue.TryTake(out Item? item, wait > TimeSpan.Zero ? wait : TimeSpan.Zero);
            if (!took && _queue.IsCompleted)
                break;
            try
            {
                if (item?.Record is byte[] record && _failure is null)
                {
                    _stream.Write(record);
                    dirty = true;
                }
                if ((item?.Flushed is not null || sinceFlush.Elapsed >= _flushInterval) && dirty && _failure is null)
                {
                    _stream.Flush();
                    dirty = false;
                }
            }
            catch (Exception e)
            {
                // Keep draining so producers never block forever; the failure surfaces on the next call.
                _failure ??= e;
            }
            if (sinceFlush.Elapsed >= _flushInterval)
                sinceFlush.Restart();
            item?.Flushed?.Set();
        }
    }

    private static FileStream OpenNewFile(string directory, double now)
    {
        string host = Environment.MachineName;
        int pid = Environment.ProcessId;
        long seconds = (long)now;
        while (true)
        {
            int uid = Interlocked.Increment(ref s_nextUid) - 1;
            string name = string.Create(CultureInfo.InvariantCulture, $"events.out.tfevents.{seconds:D10}.{host}.{pid}.{uid}");
            string path = Path.Combine(directory, name);
            if (File.Exists(path))
                continue;
            return new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 1 << 16);
        }
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ThrowIfFailed();
    }

    private void ThrowIfFailed()
    {
        if (_failure is null || _failureReported)
            return;
        _failureReported = true;
        if (_failure is IOException or UnauthorizedAccessException)
            throw new UserErrorException($"Writing TensorBoard events to {FilePath} failed ({_failure.Message}); free space or choose another output_dir.", _failure);
        throw new InvalidOperationException($"the TensorBoard writer for {FilePath} failed.", _failure);
    }
}
