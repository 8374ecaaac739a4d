using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>
/// Gradients that never pile up in host memory: each final gradient — a parameter's whole (autograd's own .grad, or an
/// fp32 sum for a weight two stages use), or one row block of a large edge weight — is published when backward leaves
/// the stage that owns it, read in place by the optimizer as it updates the sub-groups covering it, and freed as soon as
/// the last of those is done. No per-parameter accumulator exists; what is alive at once is bounded by
/// <c>maxOutstandingByteCount</c> (the compute thread waits in <see cref="WaitForRoom"/> when the optimizer lags:
/// back-pressure), which the plan sizes at about two stages or two sub-groups. The wait is only for gradients the
/// optimizer can already consume (their sub-groups lie above the backward boundary, <see cref="SetBoundary"/>): when
/// none can, it would never end, so it does not start.
/// With <c>holdFrom</c>, a gradient any of whose sub-groups reach past that flat element is held for an update pass
/// after backward (<see cref="PartitionedOptimizer.StepInReverseThenAboveAsync"/>): it is outside the bound (the plan
/// counts it apart), never consumable during backward, and kept by <see cref="EndStep"/> until that pass releases it.
/// The global norm comes from <see cref="GradientNormPartials"/>, recorded as each gradient is published.
/// Thread-safe: published from the compute thread, read and released from the optimizer's task.
/// DESIGN: "Gradients are consumed, not stored."
/// </summary>
public sealed class StreamedGradients : IGradientSink, IDisposable
{
    private readonly ParameterLayout _layout;
    private readonly long _maxOutstanding;
    private readonly object _lock = new();
    private readonly List<Piece>[] _pieces;
    private readonly GradientNormPartials _norm;
    private long _outstanding;
    private long _boundary;
    private readonly long _holdFrom;
    private long _held;
    private double _roomWaitSeconds;

    private readonly bool _carryWeights;

    private readonly bool _carryHeldWeights;

    /// <param name="carryWeights">Keep a copy of each published gradient's weights for the update of residual masters
    /// (<see cref="PreviousWeights"/>), counted in the bound with the gradient.</param>
    /// <param name="carryHeldWeights">Held gradients carry theirs too (their host memory doubles); without it the pass
    /// after backward reads their weights back.</param>
    public StreamedGradients(ParameterLayout layout, long maxOutstandingByteCount, long holdFrom = long.MaxValue, bool carryWeights = false, bool carryHeldWeights = false)
    {
        _carryWeights = carryWeights;
        _carryHeldWeights = carryWeights && carryHeldWeights;
        _holdFrom = holdFrom;
        _layout = layout;
        _maxOutstanding = maxOutstandingByteCount;
        _pieces = layout.Parameters.Select(_ => new List<Piece>()).ToArray();
        _norm = new GradientNormPartials(layout);
        _boundary = layout.ElementCount;
    }

    /// <summary>Bytes of gradients published and not yet released.</summary>
    public long OutstandingByteCount { get { lock (_lock) return _outstanding; } }

    /// <summary>Highest <see cref="OutstandingByteCount"/> seen (what the plan's bound is checked against).</summary>
    public long PeakOutstandingByteCount { get; private set; }

    /// <summary>Backward has finalised every gradient at or after flat element <paramref name="boundary"/> (it only moves down).</summary>
    public void SetBoundary(long boundary)
    {
        lock (_lock)
            _boundary = Math.Min(_boundary, boundary);
    }

    /// <summary>
    /// Blocks until <paramref name="byteCount"/> more bytes fit under the bound, or nothing outstanding can be consumed
    /// before more is published (its sub-groups reach below the boundary): waiting then would never end.
    /// </summary>
    public void WaitForRoom(long byteCount)
    {
        lock (_lock)
        {
            long start = 0;
            while (_outstanding > 0 && _outstanding + byteCount > _maxOutstanding && AnyConsumable())
            {
                if (start == 0)
                    start = System.Diagnostics.Stopwatch.GetTimestamp();
                Monitor.Wait(_lock);
            }
            if (start != 0)
                _roomWaitSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
    }

    public double RoomWaitSeconds
    {
        get
        {
            lock (_lock)
                return _roomWaitSeconds;
        }
    }

    /// <summary>Hands over <paramref name="parameter"/>'s whole final gradient (see <see cref="Publish(int, long, Tensor)"/>).</summary>
    public void Publish(int parameter, Tensor gradient) => Publish(parameter, 0, gradient);

    /// <summary>
    /// Hands over elements [<paramref name="offset"/>, offset + n) of <paramref name="parameter"/>'s final gradient
    /// (contiguous, CPU, fp32 or bf16, n elements; the source owns it from now on). Computes its norm partials first, on
    /// the calling thread. A piece must start on a 64 Ki-element chunk and end on one or at the parameter's end.
    /// </summary>
    public void Publish(int parameter, long offset, Tensor gradient) => Publish(parameter, offset, gradient, null);

    /// <summary>As <see cref="Publish(int, long, Tensor)"/>; with carryWeights, a copy of <paramref name="weights"/> (n elements, as backward used them) goes with the gradient.</summary>
    public void Publish(int parameter, long offset, Tensor gradient, Tensor? weights)
    {
        _norm.Record(parameter, offset, gradient);
        ElementType type = ElementTypeExtensions.FromDType(gradient.DType);
        long count = gradient.NumElements;
        long flatFirst = _layout.FlatOffset(parameter) + offset, flatEnd = flatFirst + count;
        int groups = 0;
        long firstGroupElement = long.MaxValue, lastGroupEnd = 0;
        foreach (SubGroup group in _layout.SubGroups)
            if (group.FirstElement < flatEnd && group.FirstElement + group.ElementCount > flatFirst)
            {
                groups++;
                firstGroupElement = Math.Min(firstGroupElement, group.FirstElement);
                lastGroupEnd = Math.Max(lastGroupEnd, group.FirstElement + group.ElementCount);
            }
        bool held = lastGroupEnd > _holdFrom;
        Tensor? carried = null;
        if (_carryWeights && weights is not null && (!held || _carryHeldWeights))
        {
            if (weights.NumElements != count)
                throw new ArgumentException($"Parameter {parameter}'s weights have {weights.NumElements} elements for a gradient of {count}.", nameof(weights));
            using (Tensor dense = weights.Contiguous()) // the optimizer reads it by element offset
                carried = dense.Clone();
            carried = TensorScope.Current?.Detach(carried) ?? carried;
        }
        long bytes = count * type.ByteCount() + (carried is null ? 0 : count * carried.ElementByteCount);
        lock (_lock)
        {
            if (_pieces[parameter].Any(p => p.Offset < offset + count && offset < p.Offset + p.Count))
                throw new InvalidOperationException($"Parameter {parameter}'s gradient [{offset}, {offset + count}) was published twice in one step.");
            _pieces[parameter].Add(new Piece(offset, count, gradient, carried, bytes, groups, firstGroupElement, held));
            if (held)
                _held += bytes;
            else
                _outstanding += bytes;
            PeakOutstandingByteCount = Math.Max(PeakOutstandingByteCount, _outstanding + _held);
        }
    }

    public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment)
    {
        Piece piece;
        lock (_lock)
            piece = Find(segment) ?? throw new InvalidOperationException($"Sub-group {group.Index} was updated before parameter {segment.Parameter}'s gradient at {segment.ParameterOffset} was final.");
        ElementType type = ElementTypeExtensions.FromDType(piece.Gradient.DType);
        return (piece.Gradient.DataPointer + (nint)((segment.ParameterOffset - piece.Offset) * type.ByteCount()), type);
    }

    public nint PreviousWeights(SubGroup group, SubGroupSegment segment)
    {
        lock (_lock)
            return Find(segment) is { Weights: Tensor weights } piece
                ? weights.DataPointer + (nint)((segment.ParameterOffset - piece.Offset) * weights.ElementByteCount)
                : 0;
    }

    public void Release(SubGroup group)
    {
        lock (_lock)
        {
            foreach (SubGroupSegment segment in group.Segments)
            {
                if (Find(segment) is not Piece piece || --piece.GroupsLeft > 0)
                    continue;
                if (piece.Held)
                    _held -= piece.ByteCount;
                else
                    _outstanding -= piece.ByteCount;
                piece.Dispose();
                _pieces[segment.Parameter].Remove(piece);
            }
            Monitor.PulseAll(_lock);
        }
    }

    public double SumOfSquares(int maxDegreeOfParallelism) => _norm.Sum();

    /// <summary>The overlapped update has consumed what it will: free the rest, but the held gradients its later pass still reads.</summary>
    public void EndStep() => Free(keepHeld: true);

    /// <summary>Frees whatever is still published (a failed step, or the end); the next step starts empty.</summary>
    public void Clear() => Free(keepHeld: false);

    private void Free(bool keepHeld)
    {
        lock (_lock)
        {
            foreach (List<Piece> pieces in _pieces)
            {
                foreach (Piece piece in pieces.Where(p => !(keepHeld && p.Held)))
                    piece.Dispose();
                pieces.RemoveAll(p => !(keepHeld && p.Held));
            }
            _outstanding = 0;
            if (!keepHeld)
                _held = 0;
            _boundary = _layout.ElementCount;
            Monitor.PulseAll(_lock);
        }
    }

    public void Dispose() => Clear();

    private Piece? Find(SubGroupSegment segment)
    {
        foreach (Piece piece in _pieces[segment.Parameter])
            if (segment.ParameterOffset >= piece.Offset && segment.ParameterOffset + segment.ElementCount <= piece.Offset + piece.Count)
                return piece;
        return null;
    }

    private bool AnyConsumable()
    {
        foreach (List<Piece> pieces in _pieces)
            foreach (Piece piece in pieces)
                if (!piece.Held && piece.FirstGroupElement >= _boundary)
                    return true;
        return false;
    }

    private sealed class Piece(long offset, long count, Tensor gradient, Tensor? weights, long byteCount, int groups, long firstGroupElement, bool held)
    {
        /// <summary>The weights the gradient is of, before the step (carried for residual masters), or null.</summary>
        public Tensor? Weights { get; } = weights;

        /// <summary>Bytes of the gradient and the carried weights.</summary>
        public long ByteCount { get; } = byteCount;

        public void Dispose()
        {
            Gradient.Dispose();
            Weights?.Dispose();
        }

        /// <summary>Some of its sub-groups are updated by the pass after backward: kept across <see cref="EndStep"/>.</summary>
        public bool Held { get; } = held;

        public long Offset { get; } = offset;
        public long Count { get; } = count;
        public Tensor Gradient { get; } = gradient;
        public int GroupsLeft { get; set; } = groups;
        public long FirstGroupElement { get; } = firstGroupElement;
    }
}
