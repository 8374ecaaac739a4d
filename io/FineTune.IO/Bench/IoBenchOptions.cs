namespace FineTune.IO.Bench;

/// <summary>What `finetune bench io` measures: file size, request size, queue depths, and whether to run fio.</summary>
public sealed record IoBenchOptions
{
    /// <summary>Directory on the file system to measure (the recipe's nvme_dir); bench files are deleted afterwards.</summary>
    public required string Directory { get; init; }

    /// <summary>Bytes written then read per engine (1 GiB: about a second per pass on a 1 GB/s disk).</summary>
    public long FileByteCount { get; init; } = 1L << 30;

    /// <summary>Bytes per request, as fio's --bs (1 MiB).</summary>
    public int BlockByteCount { get; init; } = 1 << 20;

    /// <summary>Requests in flight for the engine comparison, as fio's --iodepth (32).</summary>
    public int QueueDepth { get; init; } = 32;

    /// <summary>Queue depths of the io_uring read sweep.</summary>
    public IReadOnlyList<int> SweepQueueDepths { get; init; } = new[] { 1, 2, 4, 8, 16, 32, 64 };

    /// <summary>Bytes read per sweep point (capped at <see cref="FileByteCount"/>).</summary>
    public long SweepByteCount { get; init; } = 256L << 20;

    /// <summary>Rounds of (each engine, then fio), alternated so a shared disk's drift hits all alike; medians are reported.</summary>
    public int RoundCount { get; init; } = 3;

    /// <summary>Run fio in the same command for the reference figure.</summary>
    public bool RunFio { get; init; } = true;

    /// <summary>Buffer for the CRC32C and memory-bandwidth line.</summary>
    public long CrcBufferByteCount { get; init; } = 256L << 20;
}
