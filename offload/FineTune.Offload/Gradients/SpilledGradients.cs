using FineTune.Offload.Adam;
using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>One final gradient piece's place in the spill file: a whole parameter, or one row block of an edge weight.</summary>
public readonly record struct GradientPiece(int Parameter, long Offset, long ElementCount, ElementType Type)
{
    public long ByteCount => ElementCount * Type.ByteCount();
}

/// <summary>
/// Gradients for an update that waits for the global norm (clipping, loss scaling: the step is decided when backward
/// ends and applied under the next forward), kept on NVMe instead of in fp32 host accumulators: each final piece is
/// written as backward makes it (as autograd made it, bf16 or fp32, through a ring of staging buffers of up to 16 MiB, so
/// backward waits only when the drive falls behind), its norm partials recorded on the way
/// (<see cref="GradientNormPartials"/>); the update reads each sub-group's gradients back in ascending order, the next
/// three sub-groups read ahead while one is updated. The bytes read are the bytes written, so the update is the one the
/// accumulators would give, bit for bit, at 2 B/param written and read per step for bf16 weights, and host memory holds
/// the staging buffers only. The next step's first piece waits for the update (the engine settles it first), so the
/// file is reused every step.
/// </summary>
public sealed unsafe class SpilledGradients : IGradientSink, IDisposable
{
    /// <summary>The most bytes per staging buffer (one write each).</summary>
    public const long MaxStagingByteCount = 16L << 20;

    /// <summary>Staging buffers: writes in flight while backward goes on.</summary>
    public const int StagingBufferCount = 4;

    private readonly ParameterLayout _layout;
    private readonly GradientNormPartials _norm;
    private readonly DeviceFile _file;
    private readonly List<(GradientPiece Piece, long FileOffset)>[] _pieces;
    private readonly IReadOnlyList<HostLease> _staging;
    private readonly Task?[] _writes;
    private readonly IReadOnlyList<HostLease> _readSlots;
    private readonly LoadedGroup?[] _loaded;
    private int _nextStaging;
    private bool _stepEnded = true;
    private bool _flushed;

    /// <summary>Bytes per staging buffer: 16 MiB, or the largest piece when that is less.</summary>
    public static long StagingSlotByteCount(IEnumerable<GradientPiece> pieces) =>
        Math.Min(MaxStagingByteCount, pieces.Max(p => HostAlignment.RoundUpToPage(p.ByteCount)));

    /// <summary>The plan's file size: every piece at a page-aligned offset.</summary>
    public static long FileByteCount(IEnumerable<GradientPiece> pieces) => pieces.Sum(p => HostAlignment.RoundUpToPage(p.ByteCount));

    /// <summary>Read buffers: the sub-group being updated and the next ones read ahead.</summary>
    public const int ReadSlotCount = 4;

    /// <summary>The size of each read buffer: the largest sub-group's gradients, each segment read in whole pages.</summary>
    public static long ReadSlotByteCount(ParameterLayout layout, IReadOnlyList<GradientPiece> pieces) =>
        layout.SubGroups.Max(g => g.Segments.Sum(s => HostAlignment.RoundUpToPage(s.ElementCount * PieceOf(pieces, s).Type.ByteCount()) + HostAlignment.PageByteCount));

    /// <param name="staging"><see cref="StagingBufferCount"/> buffers of <see cref="StagingSlotByteCount"/>.</param>
    /// <param name="readSlots"><see cref="ReadSlotCount"/> buffers of <see cref="ReadSlotByteCount"/>.</param>
    public SpilledGradients(ParameterLayout layout, IReadOnlyList<GradientPiece> pieces, IReadOnlyList<HostLease> staging, IReadOnlyList<HostLease> readSlots, NvmeDevice device)
    {
        _layout = layout;
        _norm = new GradientNormPartials(layout);
        _staging = staging;
        _writes = new Task?[staging.Count];
        _readSlots = readSlots;
        _loaded = new LoadedGroup?[readSlots.Count];
        _pieces = layout.Parameters.Select(_ => new List<(GradientPiece, long)>()).ToArray();
        long offset = 0;
        foreach (GradientPiece piece in pieces)
        {
            _pieces[piece.Parameter].Add((piece, offset));
            offset += HostAlignment.RoundUpToPage(piece.ByteCount);
        }
        _file = device.CreateFile("gradients", offset);
    }

    /// <summary>The spill's NVMe traffic and the time backward and the update waited for it.</summary>
    public TransferCounters Counters { get; } = new();

    /// <summary>Host memory holds no gradient beyond the piece being copied (autograd's own tensor).</summary>
    public long PeakOutstandingByteCount => 0;

    public void SetBoundary(long boundary) { }

    public void WaitForRoom(long byteCount) { }

    public double RoomWaitSeconds => 0;

    public void Publish(int parameter, long offset, Tensor gradient)
    {
        if (_stepEnded)
            StartStep();
        _norm.Record(parameter, offset, gradient);
        var (piece, fileOffset) = _pieces[parameter].FirstOrDefault(p => p.Piece.Offset == offset);
        if (piece.ElementCount != gradient.NumElements || piece.Type != ElementTypeExtensions.FromDType(gradient.DType))
            throw new InvalidOperationException($"Parameter {parameter}'s gradient piece at {offset} ({gradient.NumElements} x {gradient.DType}) is not one the plan laid out.");
        byte* source = (byte*)gradient.DataPointer;
        long chunk = _staging[0].ByteCount;
        for (long done = 0; done < piece.ByteCount; done += chunk)
        {
            long bytes = Math.Min(chunk, piece.ByteCount - done);
            int slot = _nextStaging;
            _nextStaging = (slot + 1) % _staging.Count;
            if (_writes[slot] is Task previous)
            {
                long start = Stopwatch.GetTimestamp();
                previous.GetAwaiter().GetResult();
                Counters.AddWriteWaitSince(start);
            }
            Buffer.MemoryCopy(source + done, _staging[slot].Pointer, chunk, bytes);
            long written = HostAlignment.RoundUpToPage(bytes);
            _writes[slot] = _file.WriteAsync(fileOffset + done, _staging[slot].Buffer, 0, written).AsTask();
            Counters.AddWrite(written);
        }
        gradient.Dispose();
    }

    public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment)
    {
        LoadedGroup loaded = Load(group);
        int index = IndexOf(group, segment);
        return (_readSlots[loaded.Slot].Buffer.Address + (nint)loaded.Offsets[index], loaded.Types[index]);
    }

    public void Release(SubGroup group)
    {
        for (int s = 0; s < _loaded.Length; s++)
            if (_loaded[s] is { } loaded && loaded.Group == group.Index)
                _loaded[s] = null;
    }

    public double SumOfSquares(int maxDegreeOfParallelism) => _norm.Sum();

    /// <summary>Nothing to let go: the update under the next forward reads the file; the next step's first piece starts over.</summary>
    public void EndStep() => _stepEnded = true;

    public void Dispose()
    {
        Drain();
        _file.Dispose();
        foreach (HostLease lease in _staging.Concat(_readSlots))
            lease.Dispose();
    }

    /// <summary>A new step's first piece: the previous update is done with the file (the engine settled it); forget what it read.</summary>
    private void StartStep()
    {
        Drain();
        Array.Clear(_loaded);
        _flushed = false;
        _stepEnded = false;
    }

    /// <summary>
    /// Every write and read in flight finished. Their errors were the update's (it waits for every write before its
    /// first read) or belong to a step that failed or was skipped and reads nothing.
    /// </summary>
    private void Drain()
    {
        foreach (Task? write in _writes)
            try { write?.GetAwaiter().GetResult(); } catch (Exception) { }
        Array.Clear(_writes);
        foreach (LoadedGroup? loaded in _loaded)
            try { loaded?.Read.GetAwaiter().GetResult(); } catch (Exception) { }
    }

    /// <summary>Sub-group <paramref name="group"/>'s gradients in a read slot (waiting for its prefetch, or reading now); the next one's prefetch started.</summary>
    private LoadedGroup Load(SubGroup group)
    {
        if (!_flushed)
        {
            long start = Stopwatch.GetTimestamp();
            foreach (Task? write in _writes)
                write?.GetAwaiter().GetResult();
            Counters.AddWriteWaitSince(start);
            _flushed = true;
        }
        LoadedGroup loaded = _loaded.FirstOrDefault(l => l?.Group == group.Index) ?? StartRead(group)
            ?? throw new InvalidOperationException($"No read slot is free for sub-group {group.Index}'s gradients: the previous sub-groups were not released.");
        if (!loaded.Read.IsCompleted)
        {
            long start = Stopwatch.GetTimestamp();
            loaded.Read.GetAwaiter().GetResult();
            Counters.AddReadWaitSince(start);
        }
        loaded.Read.GetAwaiter().GetResult();
        // read ahead into every free slot: a gradient read queues behind the states' own read-ahead on the same drive
        for (int next = group.Index + 1; next < _layout.SubGroups.Count && next <= group.Index + _loaded.Length - 1; next++)
            if (!_loaded.Any(l => l?.Group == next) && StartRead(_layout.SubGroups[next]) is null)
                break;
        return loaded;
    }

    /// <summary>Starts reading <paramref name="group"/>'s segments into a free slot, each in whole pages; null when none is free.</summary>
    private LoadedGroup? StartRead(SubGroup group)
    {
        int slot = Array.IndexOf(_loaded, null);
        if (slot < 0)
            return null;
        var offsets = new long[group.Segments.Count];
        var types = new ElementType[group.Segments.Count];
        var reads = new List<Task>();
        long cursor = 0;
        for (int i = 0; i < group.Segments.Count; i++)
        {
            SubGroupSegment segment = group.Segments[i];
            var (piece, fileOffset) = _pieces[segment.Parameter].First(p => segment.ParameterOffset >= p.Piece.Offset && segment.ParameterOffset + segment.ElementCount <= p.Piece.Offset + p.Piece.ElementCount);
            long first = fileOffset + (segment.ParameterOffset - piece.Offset) * piece.Type.ByteCount();
            long pageFirst = first / HostAlignment.PageByteCount * HostAlignment.PageByteCount;
            long pageEnd = HostAlignment.RoundUpToPage(first + segment.ElementCount * piece.Type.ByteCount());
            reads.Add(_file.ReadAsync(pageFirst, _readSlots[slot].Buffer, cursor, pageEnd - pageFirst).AsTask());
            Counters.AddRead(pageEnd - pageFirst);
            offsets[i] = cursor + (first - pageFirst);
            types[i] = piece.Type;
            cursor += pageEnd - pageFirst;
        }
        var loaded = new LoadedGroup(group.Index, slot, offsets, types, Task.WhenAll(reads));
        _loaded[slot] = loaded;
        return loaded;
    }

    private static int IndexOf(SubGroup group, SubGroupSegment segment)
    {
        for (int i = 0; i < group.Segments.Count; i++)
            if (group.Segments[i].Parameter == segment.Parameter && group.Segments[i].ParameterOffset == segment.ParameterOffset)
                return i;
        throw new ArgumentException($"The segment of parameter {segment.Parameter} at {segment.ParameterOffset} is not one of sub-group {group.Index}'s.", nameof(segment));
    }

    private static GradientPiece PieceOf(IReadOnlyList<GradientPiece> pieces, SubGroupSegment s) =>
        pieces.First(p => p.Parameter == s.Parameter && s.ParameterOffset >= p.Offset && s.ParameterOffset + s.ElementCount <= p.Offset + p.ElementCount);

    private sealed record LoadedGroup(int Group, int Slot, long[] Offsets, ElementType[] Types, Task Read);
}
