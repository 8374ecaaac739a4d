using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>
/// Gradients that never pile up in host memory: each parameter's final gradient tensor (autograd's own .grad, or an
/// fp32 sum for a weight two stages use) is published when backward leaves the stage that owns it, read in place by
/// the optimizer as it updates the sub-groups covering it, and freed as soon as the last of those is done. No
/// per-parameter accumulator exists; what is alive at once is bounded by <c>maxOutstandingByteCount</c> (the compute
/// thread waits in <see cref="WaitForRoom"/> when the optimizer lags: back-pressure), which the plan sizes at about two
/// stages. The global norm is kept as one fp64 partial per (parameter, 64 Ki-element chunk), computed when the
/// gradient is published and summed in ascending order, so it equals <see cref="GradientNorm.SumOfSquares"/> over
/// fp32 accumulators bit for bit.
/// Thread-safe: published from the compute thread, read and released from the optimizer's task.
/// DESIGN: "Gradients are consumed, not stored."
/// </summary>
public sealed class StreamedGradients : IGradientSource, IDisposable
{
    private readonly ParameterLayout _layout;
    private readonly long _maxOutstanding;
    private readonly object _lock = new();
    private readonly Tensor?[] _published;
    private readonly int[] _groupsLeft;
    private readonly int[] _groupsOf;
    private readonly double[][] _partials;
    private long _outstanding;

    public StreamedGradients(ParameterLayout layout, long maxOutstandingByteCount)
    {
        _layout = layout;
        _maxOutstanding = maxOutstandingByteCount;
        _published = new Tensor?[layout.Parameters.Count];
        _groupsLeft = new int[layout.Parameters.Count];
        _groupsOf = new int[layout.Parameters.Count];
        foreach (SubGroup group in layout.SubGroups)
            foreach (SubGroupSegment segment in group.Segments)
                _groupsOf[segment.Parameter]++;
        _partials = layout.Parameters.Select(p => new double[(p.ElementCount + CpuAdamW.ChunkElementCount - 1) / CpuAdamW.ChunkElementCount]).ToArray();
    }

    /// <summary>Bytes of gradients published and not yet released.</summary>
    public long OutstandingByteCount { get { lock (_lock) return _outstanding; } }

    /// <summary>Highest <see cref="OutstandingByteCount"/> seen (what the plan's bound is checked against).</summary>
    public long PeakOutstandingByteCount { get; private set; }

    /// <summary>Blocks until <paramref name="byteCount"/> more bytes fit under the bound (or nothing is outstanding).</summary>
    public void WaitForRoom(long byteCount)
    {
        lock (_lock)
            while (_outstanding > 0 && _outstanding + byteCount > _maxOutstanding)
                Monitor.Wait(_lock);
    }

    /// <summary>
    /// Hands over <paramref name="parameter"/>'s final gradient (contiguous, CPU, fp32 or bf16, the parameter's shape;
    /// the source owns it from now on). Computes its norm partials first, on the calling thread.
    /// </summary>
    public unsafe void Publish(int parameter, Tensor gradient)
    {
        ElementType type = ElementTypeExtensions.FromDType(gradient.DType);
        if (!gradient.IsContiguous || !gradient.Device.IsCpu || gradient.NumElements != _layout.Parameters[parameter].ElementCount)
            throw new ArgumentException($"The gradient of parameter {parameter} must be a contiguous CPU tensor of its {_layout.Parameters[parameter].ElementCount} elements.", nameof(gradient));
        nint data = gradient.DataPointer;
        long count = gradient.NumElements;
        double[] partials = _partials[parameter];
        Parallel.For(0, partials.Length, c =>
        {
            long start = c * CpuAdamW.ChunkElementCount;
            partials[c] = GradientNorm.SumOfSquaresChunk(data + (nint)(start * type.ByteCount()), type, Math.Min(CpuAdamW.ChunkElementCount, count - start));
        });
        lock (_lock)
        {
            if (_published[parameter] is not null)
                throw new InvalidOperationException($"Parameter {parameter}'s gradient was published twice in one step.");
            _published[parameter] = gradient;
            _groupsLeft[parameter] = _groupsOf[parameter];
            _outstanding += count * type.ByteCount();
            PeakOutstandingByteCount = Math.Max(PeakOutstandingByteCount, _outstanding);
        }
    }

    public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment)
    {
        Tensor gradient;
        lock (_lock)
            gradient = _published[segment.Parameter] ?? throw new InvalidOperationException($"Sub-group {group.Index} was updated before parameter {segment.Parameter}'s gradient was final.");
        ElementType type = ElementTypeExtensions.FromDType(gradient.DType);
        return (gradient.DataPointer + (nint)(segment.ParameterOffset * type.ByteCount()), type);
    }

    public void Release(SubGroup group)
    {
        lock (_lock)
        {
            foreach (SubGroupSegment segment in group.Segments)
            {
                if (--_groupsLeft[segment.Parameter] > 0 || _published[segment.Parameter] is not Tensor done)
                    continue;
                _outstanding -= done.NumElements * done.ElementByteCount;
                done.Dispose();
                _published[segment.Parameter] = null;
            }
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>The partials of every parameter, in ascending order (call once every gradient of the step was published).</summary>
    public double SumOfSquares(int maxDegreeOfParallelism)
    {
        double total = 0;
        foreach (double[] partials in _partials)
            foreach (double partial in partials)
                total += partial;
        return total;
    }

    /// <summary>Frees whatever is still published (a failed step, or the end); the next step starts empty.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            for (int p = 0; p < _published.Length; p++)
            {
                _published[p]?.Dispose();
                _published[p] = null;
            }
            _outstanding = 0;
            Monitor.PulseAll(_lock);
        }
    }

    public void Dispose() => Clear();
}
