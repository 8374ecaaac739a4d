using System.Diagnostics;
using FineTune.IO;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;

namespace FineTune.Offload.Activations;

/// <summary>
/// Kept graphs' saved tensors on NVMe (SSDTrain's idea, without saved-tensor hooks): the regions a layer's forward
/// allocated under <see cref="AllocationCapture"/> and its graph still holds are written to a preallocated O_DIRECT
/// file straight from where they lie, and each region's pages go back to the kernel once the drive has its bytes.
/// Before the layer's backward, <see cref="Prefetch"/> reads them back into the same addresses and
/// <see cref="Restore"/> waits for that, so autograd finds every tensor as it saved it: the same bits as a graph kept
/// in memory, with no recompute. A prefetch that comes before its write has finished keeps the pages instead.
///
/// Host memory: forward waits (write wait) while more than <c>inFlightLimitByteCount</c> of written-out regions still
/// hold their pages, so a drive slower than the compute bounds memory rather than growing it; backward holds the
/// layers prefetched ahead. The spill adds as much to the capture's page pool (<see cref="AllocationCapture.AddPoolLimit"/>):
/// written-out pages wait there for the next layer's tensors and the read-backs, so neither faults in fresh pages. Regions that would overrun the file stay in memory (counted in
/// <see cref="UnspilledByteCount"/>). Offsets restart with each micro-batch (<see cref="BeginPass"/>).
///
/// Every call but the I/O completions comes from the compute thread. A region must stay alive (its graph not freed)
/// until its layer is restored, or until <see cref="Drain"/> returns after a failure.
/// reference: SSDTrain (activation offloading to SSD overlapped with compute); DeepSpeed activation checkpointing.
/// </summary>
public sealed class SavedTensorSpill : IDisposable
{
    private readonly DeviceFile _file;
    private readonly long _inFlightLimit;
    private readonly List<Entry>?[] _layers;
    private readonly Queue<Entry> _writing = new();
    private long _nextOffset;
    private bool _disposed;
    private long _holding; // bytes written or being written whose pages are not yet discarded and not wanted back

    /// <param name="file">The spill file; its length bounds one micro-batch's spilled bytes.</param>
    /// <param name="layerCount">Layers that may spill.</param>
    /// <param name="inFlightLimitByteCount">Bytes of spilled regions that may still hold their pages while forward goes on.</param>
    public SavedTensorSpill(DeviceFile file, int layerCount, long inFlightLimitByteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layerCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFlightLimitByteCount);
        _file = file;
        _layers = new List<Entry>?[layerCount];
        _inFlightLimit = inFlightLimitByteCount;
        CapacityByteCount = new FileInfo(file.Path).Length;
        AllocationCapture.AddPoolLimit(_inFlightLimit);
    }

    /// <summary>Bytes written and read, waits.</summary>
    public TransferCounters Counters { get; } = new();

    /// <summary>Layers that may spill (numbered from 0, the lowest).</summary>
    public int LayerCount => _layers.Length;

    /// <summary>The file's length: the most one micro-batch spills.</summary>
    public long CapacityByteCount { get; }

    /// <summary>Bytes spilled by the current micro-batch so far.</summary>
    public long SpilledByteCount => _nextOffset;

    /// <summary>Bytes of captured regions that did not fit in the file and stayed in memory, over the spill's life.</summary>
    public long UnspilledByteCount { get; private set; }

    /// <summary>"nvme (io_uring, O_DIRECT, path)".</summary>
    public string Description => _file.Description;

    /// <summary>Whether layer <paramref name="layer"/> has regions out (spilled and not restored).</summary>
    public bool Holds(int layer) => _layers[layer] is not null;

    /// <summary>Starts a micro-batch: every layer of the last one must have been restored.</summary>
    public void BeginPass()
    {
        for (int i = 0; i < _layers.Length; i++)
            if (_layers[i] is not null)
                throw new InvalidOperationException($"layer {i}'s spilled tensors were never restored.");
        _nextOffset = 0;
    }

    /// <summary>
    /// Writes layer <paramref name="layer"/>'s <paramref name="regions"/> to the file and discards each one's pages once
    /// written; then waits while the regions still holding pages exceed the in-flight limit.
    /// </summary>
    public void Spill(int layer, IReadOnlyList<CapturedRegion> regions)
    {
        if (_layers[layer] is not null)
            throw new InvalidOperationException($"layer {layer} spilled twice without a restore.");
        var entries = new List<Entry>(regions.Count);
        foreach (CapturedRegion region in regions)
        {
            if (_nextOffset + region.ByteCount > CapacityByteCount)
            {
                UnspilledByteCount += region.ByteCount;
                continue;
            }
            var entry = new Entry(region, _nextOffset);
            _nextOffset += region.ByteCount;
            Interlocked.Add(ref _holding, region.ByteCount);
            entry.Written = WriteThenDiscardAsync(entry);
            entries.Add(entry);
            _writing.Enqueue(entry);
        }
        _layers[layer] = entries;
        long start = Stopwatch.GetTimestamp();
        bool waited = false;
        while (Interlocked.Read(ref _holding) > _inFlightLimit && _writing.TryDequeue(out Entry? oldest))
        {
            waited |= !oldest.Written!.IsCompleted;
            oldest.Written.GetAwaiter().GetResult();
        }
        while (_writing.TryPeek(out Entry? done) && done.Written!.IsCompleted)
            _writing.Dequeue();
        if (waited)
            Counters.AddWriteWaitSince(start);
    }

    /// <summary>Starts reading layer <paramref name="layer"/>'s regions back (a no-op when it has none out, or they are on their way).</summary>
    public void Prefetch(int layer)
    {
        if (layer < 0 || layer >= _layers.Length || _layers[layer] is not { } entries)
            return;
        foreach (Entry entry in entries)
        {
            if (entry.Read is not null)
                continue;
            bool holding;
            lock (entry)
            {
                entry.Wanted = true;
                holding = !entry.Discarded && !entry.WriteDone;
            }
            if (holding)
                Interlocked.Add(ref _holding, -entry.Region.ByteCount); // its pages stay: not in flight towards a discard any more
            entry.Read = ReadBackAsync(entry);
        }
    }

    /// <summary>Waits until layer <paramref name="layer"/>'s regions hold their bytes again (read wait), then forgets them.</summary>
    public void Restore(int layer)
    {
        if (_layers[layer] is not { } entries)
            return;
        Prefetch(layer);
        long start = Stopwatch.GetTimestamp();
        bool waited = false;
        foreach (Entry entry in entries)
        {
            waited |= !entry.Read!.IsCompleted;
            entry.Read.GetAwaiter().GetResult();
            entry.Buffer.Dispose();
        }
        if (waited)
            Counters.AddReadWaitSince(start);
        _layers[layer] = null;
    }

    /// <summary>
    /// After a failure: waits for every transfer in flight (their errors ignored) so that the graphs holding the
    /// regions can be freed, and forgets every layer.
    /// </summary>
    public void Drain()
    {
        for (int i = 0; i < _layers.Length; i++)
        {
            if (_layers[i] is not { } entries)
                continue;
            foreach (Entry entry in entries)
            {
                lock (entry)
                    entry.Wanted = true; // a write that completes now discards nothing
                try
                {
                    entry.Written?.GetAwaiter().GetResult();
                    entry.Read?.GetAwaiter().GetResult();
                }
                catch (Exception)
                {
                    // the failure being handled is the one that counts
                }
                entry.Buffer.Dispose();
            }
            _layers[i] = null;
        }
        _writing.Clear();
        Interlocked.Exchange(ref _holding, 0);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Drain();
        AllocationCapture.AddPoolLimit(-_inFlightLimit);
        _file.Dispose();
    }

    private async Task WriteThenDiscardAsync(Entry entry)
    {
        await _file.WriteAsync(entry.Offset, entry.Buffer, 0, entry.Region.ByteCount).ConfigureAwait(false);
        Counters.AddWrite(entry.Region.ByteCount);
        bool released;
        lock (entry)
        {
            entry.WriteDone = true;
            released = !entry.Wanted;
            if (released)
            {
                AllocationCapture.Discard(entry.Region);
                entry.Discarded = true;
            }
        }
        if (released)
            Interlocked.Add(ref _holding, -entry.Region.ByteCount);
    }

    private async Task ReadBackAsync(Entry entry)
    {
        await entry.Written!.ConfigureAwait(false);
        bool discarded;
        lock (entry)
            discarded = entry.Discarded;
        if (!discarded)
            return; // asked for before the write finished: the pages never left
        AllocationCapture.SupplyPages(entry.Region);
        await _file.ReadAsync(entry.Offset, entry.Buffer, 0, entry.Region.ByteCount).ConfigureAwait(false);
        Counters.AddRead(entry.Region.ByteCount);
    }

    private sealed class Entry(CapturedRegion region, long offset)
    {
        public CapturedRegion Region { get; } = region;
        public long Offset { get; } = offset;
        public AlignedBuffer Buffer { get; } = AlignedBuffer.Borrow(region.Pointer, region.ByteCount);
        public Task? Written { get; set; }
        public Task? Read { get; set; }
        public bool Wanted { get; set; }
        public bool WriteDone { get; set; }
        public bool Discarded { get; set; }
    }
}
