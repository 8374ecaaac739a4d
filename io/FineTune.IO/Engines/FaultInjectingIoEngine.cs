namespace FineTune.IO.Engines;

/// <summary>
/// Wraps an engine from <see cref="IoEngineFactory"/> and injects faults where real ones happen: short transfers and
/// EAGAIN inside the engine (through its internal fault hook, so the engine's own resubmission and retry code runs),
/// permanent errors as kernel results (so the engine's own errno-to-exception mapping runs), and delays before
/// submission (so completions arrive out of order). Counts every completion per request, so tests can assert that
/// each request completed exactly once. For tests and `finetune bench`; never used in training.
/// </summary>
public sealed class FaultInjectingIoEngine : IIoEngine
{
    private readonly IoEngineBase _inner;
    private readonly FaultInjectionOptions _options;
    private readonly RandomFaultHook _hook;
    private readonly Random _delayRandom;
    private long _issuedRequestCount;
    private long _observedCompletionCount;
    private long _delayCount;

    public FaultInjectingIoEngine(IIoEngine inner, FaultInjectionOptions options)
    {
        _inner = inner as IoEngineBase ?? throw new ArgumentException("FaultInjectingIoEngine wraps engines built by IoEngineFactory.", nameof(inner));
        _options = options;
        _hook = new RandomFaultHook(options);
        _delayRandom = new Random(options.Seed ^ 0x5bd1e995);
        _inner.FaultHook = _hook;
    }

    public string Name => $"{_inner.Name}+faults";

    public int QueueDepth => _inner.QueueDepth;

    public int MaxRequestByteCount => _inner.MaxRequestByteCount;

    public long BytesRead => _inner.BytesRead;

    public long BytesWritten => _inner.BytesWritten;

    public long CompletedRequestCount => _inner.CompletedRequestCount;

    public long SubmissionCount => _inner.SubmissionCount;

    /// <summary>Requests accepted by this wrapper.</summary>
    public long IssuedRequestCount => Interlocked.Read(ref _issuedRequestCount);

    /// <summary>Requests whose completion this wrapper observed (success, failure or cancellation). A second completion of
    /// one request cannot reach here: the engine's chunk and request guards throw on it.</summary>
    public long ObservedCompletionCount => Interlocked.Read(ref _observedCompletionCount);

    public long InjectedShortTransferCount => _hook.ShortTransferCount;

    public long InjectedTransientErrorCount => _hook.TransientErrorCount;

    public long InjectedErrorCount => _hook.ErrorCount;

    public long InjectedDelayCount => Interlocked.Read(ref _delayCount);

    public ValueTask ReadAsync(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken = default)
    {
        IoEngineBase.ValidateRequest(file, fileOffset, buffer, bufferOffset, byteCount);
        return Track(() => _inner.ReadAsync(file, fileOffset, buffer, bufferOffset, byteCount, cancellationToken));
    }

    public ValueTask WriteAsync(DirectFile file, long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount, CancellationToken cancellationToken = default)
    {
        IoEngineBase.ValidateRequest(file, fileOffset, buffer, bufferOffset, byteCount);
        return Track(() => _inner.WriteAsync(file, fileOffset, buffer, bufferOffset, byteCount, cancellationToken));
    }

    private async ValueTask Track(Func<ValueTask> submit)
    {
        Interlocked.Increment(ref _issuedRequestCount);
        TimeSpan delay = TimeSpan.Zero;
        lock (_delayRandom)
        {
            if (_delayRandom.NextDouble() < _options.DelayProbability)
                delay = _options.MaxDelay * _delayRandom.NextDouble();
        }
        if (delay > TimeSpan.Zero)
        {
            Interlocked.Increment(ref _delayCount);
            await Task.Delay(delay).ConfigureAwait(false);
        }
        try
        {
            await submit().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Increment(ref _observedCompletionCount);
        }
    }

    public void Dispose()
    {
        _inner.Dispose();
        _inner.FaultHook = null;
    }

    /// <summary>The engine-side seam: thread-safe, seeded.</summary>
    private sealed class RandomFaultHook : IIoFaultHook
    {
        private readonly FaultInjectionOptions _options;
        private readonly Random _random;
        private long _shortTransferCount;
        private long _transientErrorCount;
        private long _errorCount;

        public RandomFaultHook(FaultInjectionOptions options)
        {
            _options = options;
            _random = new Random(options.Seed);
        }

        public long ShortTransferCount => Interlocked.Read(ref _shortTransferCount);

        public long TransientErrorCount => Interlocked.Read(ref _transientErrorCount);

        public long ErrorCount => Interlocked.Read(ref _errorCount);

        public int AdjustSubmissionLength(IoOperation operation, int remainingByteCount)
        {
            int sectors = remainingByteCount / AlignedBuffer.Alignment;
            if (sectors < 2)
                return remainingByteCount;
            lock (_random)
            {
                if (_random.NextDouble() >= _options.ShortTransferProbability)
                    return remainingByteCount;
                Interlocked.Increment(ref _shortTransferCount);
                return _random.Next(1, sectors) * AlignedBuffer.Alignment;
            }
        }

        public long AdjustResult(IoOperation operation, long result)
        {
            lock (_random)
            {
                double draw = _random.NextDouble();
                if (draw < _options.ErrorProbability)
                {
                    Interlocked.Increment(ref _errorCount);
                    return -_options.ErrorErrno;
                }
                if (draw < _options.ErrorProbability + _options.TransientErrorProbability)
                {
                    Interlocked.Increment(ref _transientErrorCount);
                    return -Native.LibC.EAGAIN;
                }
                return result;
            }
        }
    }
}
