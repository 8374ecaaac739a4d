using FineTune.IO.Engines;

namespace FineTune.IO;

/// <summary>Builds an <see cref="IIoEngine"/>; Auto prefers io_uring and falls back to threads, saying so once.</summary>
public static class IoEngineFactory
{
    public const int DefaultQueueDepth = 32;
    public const int DefaultMaxRequestByteCount = 1 << 20;

    public static IIoEngine Create(IoEngineKind kind = IoEngineKind.Auto, int queueDepth = DefaultQueueDepth, int maxRequestByteCount = DefaultMaxRequestByteCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queueDepth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(queueDepth, 4096);
        if (maxRequestByteCount < AlignedBuffer.Alignment || maxRequestByteCount % AlignedBuffer.Alignment != 0)
            throw new ArgumentException($"maxRequestByteCount must be a positive multiple of {AlignedBuffer.Alignment}; got {maxRequestByteCount}.", nameof(maxRequestByteCount));

        switch (kind)
        {
            case IoEngineKind.Threads:
                return new ThreadIoEngine(queueDepth, maxRequestByteCount);
            case IoEngineKind.IoUring:
                try
                {
                    return new IoUringEngine(queueDepth, maxRequestByteCount);
                }
                catch (IoUringUnavailableException exception)
                {
                    throw new NotSupportedException($"io_uring is unavailable here: {exception.Message}; use the threads engine.", exception);
                }
            default:
                return CreateAuto(
                    () => new IoUringEngine(queueDepth, maxRequestByteCount),
                    () => new ThreadIoEngine(queueDepth, maxRequestByteCount),
                    message => IoLog.WarnOnce("io_uring-unavailable", message));
        }
    }

    /// <summary>
    /// Auto: FINETUNE_IO_ENGINE=threads|io_uring forces a kind (for containers where io_uring misbehaves); otherwise
    /// io_uring, falling back to threads with one warning when io_uring_setup fails (ENOSYS, EPERM under seccomp).
    /// </summary>
    internal static IIoEngine CreateAuto(Func<IIoEngine> createIoUring, Func<IIoEngine> createThreads, Action<string> warn)
    {
        string? forced = Environment.GetEnvironmentVariable("FINETUNE_IO_ENGINE");
        if (string.Equals(forced, "threads", StringComparison.OrdinalIgnoreCase))
            return createThreads();
        try
        {
            return createIoUring();
        }
        catch (IoUringUnavailableException exception)
        {
            if (string.Equals(forced, "io_uring", StringComparison.OrdinalIgnoreCase))
                throw new NotSupportedException($"FINETUNE_IO_ENGINE=io_uring, but io_uring is unavailable here: {exception.Message}.", exception);
            warn($"io_uring is unavailable ({exception.Message}); using pread/pwrite threads instead, which costs CPU and bandwidth at high queue depths.");
            return createThreads();
        }
    }

    /// <summary>True when an io_uring instance can be created here (it is created and closed again).</summary>
    public static bool IsIoUringAvailable()
    {
        try
        {
            using var engine = new IoUringEngine(1, DefaultMaxRequestByteCount);
            return true;
        }
        catch (IoUringUnavailableException)
        {
            return false;
        }
    }
}
