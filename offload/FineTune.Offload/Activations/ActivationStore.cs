using FineTune.IO;
using FineTune.Offload.Memory;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;

namespace FineTune.Offload.Activations;

/// <summary>
/// Where the training step keeps each decoder layer's input between forward and backward (activation
/// checkpoints). Host-tier checkpoints live in pooled buffers rented once; NVMe-tier checkpoints are copied into a
/// staging <see cref="BufferRing"/> and written to a preallocated O_DIRECT file on the drive's shared queues, so the
/// forward pass goes on while the write runs; it waits only when every staging buffer still holds a write in flight
/// (the disk is slower than the compute; counted as write wait). Backward calls <see cref="Prefetch"/> ahead of need;
/// <see cref="Load"/> waits for that read (counted as read wait). A checkpoint still in its staging buffer (written or
/// being written) is served from there without a read (a hit).
///
/// Not thread-safe: every call comes from the compute thread; I/O completions only complete tasks. Checkpoints are
/// rewritten by every micro-batch; the caller loads each one at most once after saving it.
/// reference: SSDTrain (activations to SSD, overlapped with compute); DeepSpeed activation checkpointing to CPU.
/// </summary>
public sealed class ActivationStore : IDisposable
{
    private readonly ActivationStoreOptions _options;
    private readonly HostLease?[] _hostLeases;
    private readonly BufferRing? _staging;
    private readonly (long[] Shape, DType DType)?[] _saved; // null: not saved since its last Load
    private readonly long _extentByteCount;
    private readonly DeviceFile? _file;

    /// <param name="pool">Pool planned with <see cref="AddToPlan"/>.</param>
    /// <param name="options">Shape of the store.</param>
    /// <param name="device">The drive of nvme_dir shared with the other stores; null: a device of its own.</param>
    public ActivationStore(HostMemoryPool pool, ActivationStoreOptions options, NvmeDevice? device = null)
    {
        options.Validate();
        _options = options;
        _hostLeases = new HostLease?[options.CheckpointCount];
        _saved = new (long[], DType)?[options.CheckpointCount];
        _extentByteCount = AlignedBuffer.RoundUpToSector(options.CheckpointByteCount);
        try
        {
            for (int i = options.NvmeCheckpointCount; i < options.CheckpointCount; i++)
                _hostLeases[i] = pool.Rent(BufferKind.ActivationCheckpoints);
            if (options.NvmeCheckpointCount == 0)
                return;
            _staging = new BufferRing("activation staging", pool.RentAll(BufferKind.ActivationStaging), Counters);
            long fileBytes = _extentByteCount * options.NvmeCheckpointCount;
            _file = device is null
                ? DeviceFile.Create(options.NvmeDirectory, "activations", fileBytes, options.IoEngine, options.IoQueueDepth)
                : device.CreateFile("activations", fileBytes);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The buffers this store needs, added to the pool plan of whoever builds the pool.</summary>
    public static void AddToPlan(PoolPlan plan, ActivationStoreOptions options)
    {
        options.Validate();
        if (options.HostCheckpointCount > 0)
            plan.Add(BufferKind.ActivationCheckpoints, options.CheckpointByteCount, options.HostCheckpointCount);
        if (options.NvmeCheckpointCount > 0)
            plan.Add(BufferKind.ActivationStaging, AlignedBuffer.RoundUpToSector(options.CheckpointByteCount), options.StagingBufferCount);
    }

    /// <summary>Bytes written and read, staging hits (loads served without a read), waits.</summary>
    public TransferCounters Counters { get; } = new();

    /// <summary>The NVMe swap file, or null when every checkpoint is in host memory.</summary>
    public string? FilePath => _file?.Path;

    /// <summary>"host" or "host N + nvme M (io_uring, O_DIRECT, path)".</summary>
    public string Description => _file is null ? "host" : $"host {_options.HostCheckpointCount} + nvme {_options.NvmeCheckpointCount} ({_file.Engine})";

    public bool IsOnNvme(int index) => index < _options.NvmeCheckpointCount;

    /// <summary>Copies <paramref name="input"/> (contiguous CPU, at most CheckpointByteCount bytes) into checkpoint <paramref name="index"/>.</summary>
    public unsafe void Save(int index, Tensor input)
    {
        long byteCount = input.NumElements * input.ElementByteCount;
        if (byteCount > _options.CheckpointByteCount || !input.IsContiguous)
            throw new ArgumentException($"checkpoint {index} must be contiguous and at most {_options.CheckpointByteCount} bytes, got {byteCount}.", nameof(input));
        _saved[index] = (input.Shape, input.DType);
        if (!IsOnNvme(index))
        {
            Buffer.MemoryCopy((void*)input.DataPointer, _hostLeases[index]!.Pointer, byteCount, byteCount);
            return;
        }
        BufferRing staging = _staging!;
        if (staging.Find(index) is { State: RingSlotState.Cached or RingSlotState.Ready } stale)
            staging.Discard(stale); // the previous micro-batch's copy
        RingSlot slot = staging.TakeVictim()
            ?? throw new InvalidOperationException("Every activation staging buffer holds a read; the prefetch depth exceeds the buffers.");
        staging.Fill(slot, index);
        Buffer.MemoryCopy((void*)input.DataPointer, slot.Lease.Pointer, byteCount, byteCount);
        staging.StartWrite(slot, _extentByteCount, buffer => _file!.WriteAsync(index * _extentByteCount, buffer, 0, _extentByteCount));
    }

    /// <summary>
    /// Starts bringing checkpoint <paramref name="index"/> into a staging buffer (no-op for host checkpoints or one
    /// already there). Prefetches go top-down: a checkpoint is not fetched while a higher one that is still to be
    /// loaded has no buffer, so a prefetch can never take the buffer the next Load needs.
    /// </summary>
    public void Prefetch(int index)
    {
        if (index < 0 || !IsOnNvme(index) || _saved[index] is null || _staging!.Find(index) is not null)
            return;
        for (int higher = index + 1; higher < _options.NvmeCheckpointCount; higher++)
            if (_saved[higher] is not null && _staging.Find(higher) is null)
                return;
        if (_staging.TakeVictim() is not RingSlot slot)
            return;
        _staging.StartRead(slot, index, _extentByteCount, async buffer =>
        {
            await _file!.ReadAsync(index * _extentByteCount, buffer, 0, _extentByteCount).ConfigureAwait(false);
            return 0L;
        });
    }

    /// <summary>A new tensor holding checkpoint <paramref name="index"/> as saved (shape, dtype); waits for its read if needed.</summary>
    public unsafe Tensor Load(int index)
    {
        var (shape, dtype) = _saved[index] ?? throw new InvalidOperationException($"checkpoint {index} was not saved since it was last loaded.");
        Tensor result = FineTune.Torch.Torch.Empty(shape, dtype);
        long byteCount = result.NumElements * result.ElementByteCount;
        if (!IsOnNvme(index))
        {
            Buffer.MemoryCopy(_hostLeases[index]!.Pointer, (void*)result.DataPointer, byteCount, byteCount);
            _saved[index] = null;
            return result;
        }
        BufferRing staging = _staging!;
        RingSlot? slot = staging.Find(index);
        if (slot is { State: RingSlotState.Writing or RingSlotState.Cached })
        {
            Counters.AddHit();
            staging.WaitWrite(slot); // the buffer may be reused only once the disk has it
        }
        if (slot is null)
        {
            Prefetch(index);
            slot = staging.Find(index);
        }
        if (slot is null)
        {
            // Loaded out of top-down order: free the lowest prefetched buffer (waiting for its read), then fetch.
            RingSlot victim = staging.Slots.Where(s => s.State is RingSlotState.Reading or RingSlotState.Ready).MinBy(s => s.Key)!;
            staging.WaitRead(victim);
            staging.Discard(victim);
            Prefetch(index);
            slot = staging.Find(index) ?? throw new InvalidOperationException($"checkpoint {index} could not be fetched: a higher checkpoint is still unloaded.");
        }
        staging.Use(slot);
        Buffer.MemoryCopy(slot.Lease.Pointer, (void*)result.DataPointer, byteCount, byteCount);
        staging.Release(slot);
        staging.Discard(slot);
        _saved[index] = null;
        return result;
    }

    /// <summary>Waits for every write in flight (end of a step, or before disposal).</summary>
    public void Drain() => _staging?.CompleteWrites();

    public void Dispose()
    {
        _staging?.Dispose();
        foreach (HostLease? lease in _hostLeases)
            lease?.Dispose();
        Array.Clear(_hostLeases);
        _file?.Dispose();
    }
}
