using System.Diagnostics;
using FineTune.IO;
using FineTune.Offload.Memory;
using FineTune.Offload.Swap;
using FineTune.Torch;

namespace FineTune.Offload.Activations;

/// <summary>
/// Where the training step keeps each decoder layer's input between forward and backward (activation
/// checkpoints). Host-tier checkpoints live in pooled buffers rented once; NVMe-tier checkpoints are copied into one
/// of a few staging buffers and written to a preallocated O_DIRECT file on the store's own io engines (one queue for
/// writes, one for reads), so the forward pass goes on while the write runs; it waits only when every staging
/// buffer still holds a write in flight (the disk is slower than the compute; counted as write wait).
/// Backward calls <see cref="Prefetch"/> ahead of need; <see cref="Load"/> waits for that read (counted as read wait).
/// A checkpoint whose write has not yet been recycled is served from its staging buffer without a read.
///
/// Not thread-safe: every call comes from the compute thread; I/O completions only complete tasks. Checkpoints are
/// rewritten by every micro-batch; the caller loads each one at most once after saving it.
/// reference: SSDTrain (activations to SSD, overlapped with compute); DeepSpeed activation checkpointing to CPU.
/// </summary>
public sealed class ActivationStore : IDisposable
{
    internal const string HostClass = "activation checkpoints";
    internal const string StagingClass = "activation staging (nvme)";

    private readonly ActivationStoreOptions _options;
    private readonly HostLease?[] _hostLeases;
    private readonly StagingSlot[] _staging;
    private readonly (long[] Shape, DType DType)?[] _saved; // null: not saved since its last Load
    private readonly long _extentByteCount;
    private readonly SwapFile? _file;
    private long _sequence;

    public ActivationStore(HostMemoryPool pool, ActivationStoreOptions options)
    {
        options.Validate();
        _options = options;
        _hostLeases = new HostLease?[options.CheckpointCount];
        _saved = new (long[], DType)?[options.CheckpointCount];
        _extentByteCount = AlignedBuffer.RoundUpToSector(options.CheckpointByteCount);
        _staging = [];
        try
        {
            for (int i = options.NvmeCheckpointCount; i < options.CheckpointCount; i++)
                _hostLeases[i] = pool.Rent(HostClass);
            if (options.NvmeCheckpointCount == 0)
                return;
            _staging = Enumerable.Range(0, options.StagingBufferCount).Select(_ => new StagingSlot(pool.Rent(StagingClass))).ToArray();
            _file = SwapFile.Create(options.NvmeDirectory, "activations", _extentByteCount * options.NvmeCheckpointCount, options.IoEngine, options.IoQueueDepth);
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
            plan.Add(HostClass, options.CheckpointByteCount, options.HostCheckpointCount);
        if (options.NvmeCheckpointCount > 0)
            plan.Add(StagingClass, AlignedBuffer.RoundUpToSector(options.CheckpointByteCount), options.StagingBufferCount);
    }

    public ActivationCounters Counters { get; } = new();

    /// <summary>The NVMe swap file, or null when every checkpoint is in host memory.</summary>
    public string? FilePath => _file?.Path;

    /// <summary>"host" or "host + nvme (io_uring, O_DIRECT, path)".</summary>
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
        foreach (StagingSlot held in _staging.Where(s => s.State == SlotState.Holding && s.Index == index))
            held.Release();
        StagingSlot slot = AcquireFree();
        Buffer.MemoryCopy((void*)input.DataPointer, slot.Lease.Pointer, byteCount, byteCount);
        slot.State = SlotState.Writing;
        slot.Index = index;
        slot.Sequence = ++_sequence;
        slot.Pending = _file!.WriteAsync(index * _extentByteCount, slot.Lease.Buffer, 0, _extentByteCount).AsTask();
        Counters.BytesWritten += _extentByteCount;
    }

    /// <summary>
    /// Starts bringing checkpoint <paramref name="index"/> into a staging buffer (no-op for host checkpoints or one
    /// already there). Prefetches go top-down: a checkpoint is not fetched while a higher one that is still to be
    /// loaded has no buffer, so a prefetch can never take the buffer the next Load needs.
    /// </summary>
    public void Prefetch(int index)
    {
        if (index < 0 || !IsOnNvme(index) || _saved[index] is null || FindSlot(index) is not null)
            return;
        for (int higher = index + 1; higher < _options.NvmeCheckpointCount; higher++)
            if (_saved[higher] is not null && FindSlot(higher) is null)
                return;
        if (!_staging.Any(s => s.State is SlotState.Free or SlotState.Writing))
            return;
        StagingSlot slot = AcquireFree();
        slot.State = SlotState.Reading;
        slot.Index = index;
        slot.Pending = _file!.ReadAsync(index * _extentByteCount, slot.Lease.Buffer, 0, _extentByteCount).AsTask();
        Counters.BytesRead += _extentByteCount;
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
        StagingSlot? slot = FindSlot(index);
        if (slot is null)
        {
            Prefetch(index);
            slot = FindSlot(index);
        }
        if (slot is null)
        {
            // Loaded out of top-down order: free the lowest prefetched buffer (waiting for its read), then fetch.
            StagingSlot victim = _staging.Where(s => s.State is SlotState.Reading or SlotState.Holding).MinBy(s => s.Index)!;
            victim.Pending?.GetAwaiter().GetResult();
            victim.Release();
            Prefetch(index);
            slot = FindSlot(index) ?? throw new InvalidOperationException($"checkpoint {index} could not be fetched: a higher checkpoint is still unloaded.");
        }
        long start = Stopwatch.GetTimestamp();
        if (slot.State == SlotState.Writing)
        {
            Counters.StagingHits++;
            slot.Pending!.GetAwaiter().GetResult(); // the buffer may be reused only once the disk has it
            Counters.WriteWaitSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        else if (slot.State == SlotState.Reading)
        {
            slot.Pending!.GetAwaiter().GetResult();
            Counters.ReadWaitSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Buffer.MemoryCopy(slot.Lease.Pointer, (void*)result.DataPointer, byteCount, byteCount);
        slot.Release();
        _saved[index] = null;
        return result;
    }

    /// <summary>Waits for every write in flight (end of a step, or before disposal).</summary>
    public void Drain()
    {
        foreach (StagingSlot slot in _staging.Where(s => s.Pending is not null).OrderBy(s => s.Sequence))
        {
            long start = Stopwatch.GetTimestamp();
            try { slot.Pending!.GetAwaiter().GetResult(); }
            finally { Counters.WriteWaitSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds; }
            if (slot.State == SlotState.Writing)
                slot.Release();
            else
                slot.State = SlotState.Holding;
            slot.Pending = null;
        }
    }

    private StagingSlot? FindSlot(int index) => _staging.FirstOrDefault(s => s.Index == index && s.State != SlotState.Free);

    /// <summary>A free staging buffer: one already free, else the oldest finished or in-flight write (waited for).</summary>
    private StagingSlot AcquireFree()
    {
        StagingSlot? free = _staging.FirstOrDefault(s => s.State == SlotState.Free);
        if (free is not null)
            return free;
        StagingSlot? oldest = _staging.Where(s => s.State == SlotState.Writing).MinBy(s => s.Sequence)
            ?? throw new InvalidOperationException("Every activation staging buffer holds a read; the prefetch depth exceeds the buffers.");
        long start = Stopwatch.GetTimestamp();
        oldest.Pending!.GetAwaiter().GetResult();
        Counters.WriteWaitSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        oldest.Release();
        return oldest;
    }

    public void Dispose()
    {
        foreach (StagingSlot slot in _staging)
        {
            try { slot.Pending?.GetAwaiter().GetResult(); }
            catch (DirectIoException) { } // the error already reached the caller of Load or Drain; now only cleanup matters
            slot.Lease.Dispose();
        }
        foreach (HostLease? lease in _hostLeases)
            lease?.Dispose();
        Array.Clear(_hostLeases);
        _file?.Dispose();
    }

    private enum SlotState { Free, Writing, Reading, Holding }

    private sealed class StagingSlot(HostLease lease)
    {
        public HostLease Lease { get; } = lease;
        public SlotState State { get; set; }
        public int Index { get; set; } = -1;
        public long Sequence { get; set; }
        public Task? Pending { get; set; }

        public void Release()
        {
            State = SlotState.Free;
            Index = -1;
            Pending = null;
        }
    }
}
