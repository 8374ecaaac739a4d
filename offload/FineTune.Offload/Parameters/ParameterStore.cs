using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The one owner of a model's parameter memory while it trains, on every tier, laid out by one
/// <see cref="ParameterLayout"/>. Resident: one pool buffer holding every parameter, each a persistent tensor view.
/// NVMe: a <see cref="WeightFile"/> laid out as the flat space, <see cref="WeightSlots"/> bringing in the ranges of
/// the stages in use (the next ones prefetched in the direction of travel), and a <see cref="WeightWriteBack"/> the
/// optimizer writes updated sub-groups through. Either way the model sees only <see cref="StageLease"/>s: tensor
/// views that live while the lease does. The optimizer sees <see cref="WeightAddress"/> (resident) or
/// <see cref="WriteBack"/> (NVMe).
/// Not thread-safe for leases (the compute thread); the write-back runs on the optimizer's flow.
/// DESIGN: "params of layer i+1 prefetched (device &lt;- pinned &lt;- NVMe when params are offloaded)".
/// </summary>
public sealed class ParameterStore : IDisposable
{
    private readonly ParameterLayout _layout;
    private readonly ParameterStoreOptions _options;
    private readonly DType _dtype;
    private readonly HostLease? _resident;
    private readonly Tensor?[] _residentViews;
    private readonly WeightFile? _file;
    private readonly WeightSlots? _slots;
    private readonly WeightWriteBack? _writeBack;
    private readonly int[] _rangeUsers;
    private readonly Dictionary<int, Tensor>?[] _rangeViews;
    private readonly int[] _stageUsers;
    private AlignedBuffer? _scratch;   // ReadMasters' page window
    private AlignedBuffer? _staging;   // Fill's staging buffer
    private long _filledElements, _staged, _writtenElements;
    private bool _disposed;

    public ParameterStore(ParameterLayout layout, ParameterStoreOptions options, HostMemoryPool pool, NvmeDevice? device)
    {
        _layout = layout;
        _options = options;
        _dtype = layout.WeightType.ToDType();
        _residentViews = new Tensor?[layout.Parameters.Count];
        _rangeUsers = new int[layout.Ranges.Count];
        _rangeViews = new Dictionary<int, Tensor>?[layout.Ranges.Count];
        _stageUsers = new int[layout.Stages.Count];
        try
        {
            if (options.Tier == WeightTier.Resident)
            {
                _resident = pool.Rent(BufferKind.ResidentWeights);
                for (int p = 0; p < layout.Parameters.Count; p++)
                    _residentViews[p] = View(p, WeightAddress(p));
                return;
            }
            if (options.LayerSlots < 2)
                throw new UserErrorException($"parameter offload needs at least 2 layer slots (one computing, one being read), got {options.LayerSlots}.");
            _file = device is null ? throw new ArgumentNullException(nameof(device), "the NVMe tier needs a device") : WeightFile.Create(device, layout.WeightType, layout.ElementCount);
            _writeBack = options.ReadOnly ? null : new WeightWriteBack(_file, pool, Counters);
            _slots = new WeightSlots(_file, pool, layout.Ranges, SlotClasses(layout, options), Counters);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The buffers the store needs for <paramref name="layout"/> under <paramref name="options"/>.</summary>
    public static void AddToPlan(PoolPlan plan, ParameterLayout layout, ParameterStoreOptions options)
    {
        if (options.Tier == WeightTier.Resident)
        {
            plan.Add(BufferKind.ResidentWeights, layout.ResidentWeightByteCount, 1);
            return;
        }
        WeightSlots.AddToPlan(plan, layout.WeightType.ByteCount(), layout.Ranges, SlotClasses(layout, options));
        if (!options.ReadOnly)
            WeightWriteBack.AddToPlan(plan, Math.Min(layout.SubGroupElementCount, layout.ElementCount), layout.WeightType, options.WriteBackBuffers);
    }

    public ParameterLayout Layout => _layout;

    public WeightTier Tier => _options.Tier;

    /// <summary>Bytes read into slots and written back, hits, waits (NVMe tier; zero when resident).</summary>
    public TransferCounters Counters { get; } = new();

    /// <summary>Where the optimizer writes updated weights (NVMe tier); null when resident (it writes at <see cref="WeightAddress"/>) or read-only.</summary>
    public IWeightWriteBack? WriteBack => _writeBack;

    /// <summary>"resident" or the NVMe file and engine with its slot count.</summary>
    public string Description => _file is null ? "resident" : $"{_file.Description}, {_options.LayerSlots} layer slots";

    /// <summary>Stages whose lease is still open.</summary>
    public int HeldStageCount => _stageUsers.Count(c => c > 0);

    /// <summary>Host address of <paramref name="parameter"/>'s weights (resident tier; 0 on NVMe).</summary>
    public unsafe nint WeightAddress(int parameter) =>
        _resident is null ? 0 : (nint)(_resident.Pointer + _layout.ResidentByteOffset(parameter));

    /// <summary>
    /// Sets elements [<paramref name="offset"/>, offset + n) of <paramref name="parameter"/>'s initial weights from
    /// <paramref name="values"/> (n elements in row-major order, any dtype and device: converted). On NVMe, chunks must
    /// come in layout order (they are staged through an 8 MiB buffer and written in whole pages); <see cref="CompleteFill"/>
    /// writes the rest.
    /// </summary>
    public void Fill(int parameter, long offset, Tensor values)
    {
        using var scope = TensorScope.Enter();
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        if (_resident is not null)
        {
            _residentViews[parameter]!.Reshape(-1).Narrow(0, offset, values.NumElements).CopyFrom(values.Reshape(-1));
            return;
        }
        if (_layout.FlatOffset(parameter) + offset != _filledElements)
            throw new InvalidOperationException($"Parameter {parameter} element {offset} is element {_layout.FlatOffset(parameter) + offset} of the flat space but the weight file is filled up to {_filledElements}: fill in layout order.");
        const long stagingBytes = 8L << 20;
        int elementBytes = _file!.ElementByteCount;
        long stagingElements = stagingBytes / elementBytes;
        _staging ??= new AlignedBuffer(stagingBytes);
        Tensor flat = values.Detach().To(Device.Cpu).To(_dtype).Reshape(-1);
        long count = flat.NumElements;
        for (long done = 0; done < count;)
        {
            long take = Math.Min(count - done, stagingElements - _staged);
            FineTune.Torch.Torch.FromPointer(_staging.Address + (nint)(_staged * elementBytes), [take], _dtype).CopyFrom(flat.Narrow(0, done, take));
            done += take;
            _staged += take;
            if (_staged == stagingElements)
                WriteStaged();
        }
        _filledElements += count;
    }

    /// <summary>Ends filling: writes what is staged; every parameter must have been filled (NVMe).</summary>
    public void CompleteFill()
    {
        if (_file is null)
            return;
        if (_staged > 0)
            WriteStaged();
        if (_filledElements != _layout.ElementCount)
            throw new InvalidOperationException($"The weight file holds {_filledElements} of {_layout.ElementCount} elements.");
        _staging?.Dispose();
        _staging = null;
    }

    /// <summary>Group <paramref name="group"/>'s weights widened to fp32 at <paramref name="master"/> (the optimizer's first masters, NVMe tier).</summary>
    public void ReadMasters(SubGroup group, nint master)
    {
        _scratch ??= new AlignedBuffer(HostAlignment.RoundUpToPage(_layout.SubGroupElementCount * _layout.WeightType.ByteCount()) + HostAlignment.PageByteCount);
        _file!.ReadAsFloat32(group.FirstElement, group.ElementCount, master, _scratch);
    }

    /// <summary>Frees the transient window buffer of <see cref="ReadMasters"/>.</summary>
    public void ReleaseScratch()
    {
        _scratch?.Dispose();
        _scratch = null;
    }

    private void WriteStaged()
    {
        _file!.WriteAsync(_writtenElements, _staged, _staging!).AsTask().GetAwaiter().GetResult();
        _writtenElements += _staged;
        _staged = 0;
    }

    /// <summary>
    /// Stage <paramref name="stage"/>'s weights resident until the lease is disposed; on NVMe the next stages in
    /// <paramref name="direction"/> (+1 forward, -1 backward, 0 none) are prefetched into free slots.
    /// </summary>
    public StageLease Acquire(int stage, int direction)
    {
        if (_layout.Blocks(stage) is not null)
            throw new InvalidOperationException($"Stage {stage} computes its weights block by block; acquire its blocks.");
        var views = new Dictionary<int, Tensor>();
        if (_resident is not null)
        {
            foreach (int p in _layout.Stages[stage].Uses)
                views[p] = _residentViews[p]!;
        }
        else if (_layout.RangeOfStage(stage) is int range)
        {
            if (_rangeUsers[range] == 0)
                _rangeViews[range] = Bind(range, _slots!.Acquire(range));
            _rangeUsers[range]++;
            foreach (int p in _layout.Stages[stage].Uses)
                views[p] = _rangeViews[range]![p];
            for (int ahead = 1; direction != 0 && ahead < _options.LayerSlots; ahead++)
                Prefetch(stage + ahead * direction);
        }
        _stageUsers[stage]++;
        return new StageLease(this, stage, views);
    }

    /// <summary>
    /// Whether a range's weights may be read ahead now; false while an update still running would rewrite them (the
    /// engine sets it; null: always).
    /// </summary>
    public Func<WeightRange, bool>? PrefetchGate { get; set; }

    /// <summary>
    /// Block <paramref name="block"/> of a stage that computes by row blocks (<see cref="ParameterLayout.Blocks"/>): a
    /// view of those rows of its weight, (rows, C), held until the lease is disposed; the next block in
    /// <paramref name="direction"/> (then the next stage) is prefetched.
    /// </summary>
    public StageLease AcquireBlock(int stage, int block, int direction)
    {
        IReadOnlyList<LayoutBlock> blocks = _layout.Blocks(stage) ?? throw new InvalidOperationException($"Stage {stage} takes its weights whole.");
        LayoutBlock b = blocks[block];
        var views = new Dictionary<int, Tensor>();
        Tensor? own = null;
        if (_resident is not null)
        {
            // a leaf of its own over the rows (a narrowed view of the whole weight would send its gradient to the whole)
            long rowBytes = _layout.Parameters[b.Parameter].ElementCount / _layout.Parameters[b.Parameter].Shape[0] * _layout.WeightType.ByteCount();
            long[] shape = [b.Rows, .. _layout.Parameters[b.Parameter].Shape[1..]];
            own = Owned(FineTune.Torch.Torch.FromPointer(WeightAddress(b.Parameter) + (nint)(b.FirstRow * rowBytes), shape, _dtype));
            own.RequiresGrad = true;
            views[b.Parameter] = own;
        }
        else
        {
            if (_rangeUsers[b.Range] == 0)
                _rangeViews[b.Range] = Bind(b.Range, _slots!.Acquire(b.Range));
            _rangeUsers[b.Range]++;
            views[b.Parameter] = _rangeViews[b.Range]![b.Parameter];
            int next = block + direction;
            if (direction != 0 && next >= 0 && next < blocks.Count)
                PrefetchRange(blocks[next].Range);
            else if (direction != 0)
                Prefetch(stage + direction);
        }
        _stageUsers[stage]++;
        return new StageLease(this, stage, views, b.Range, own);
    }

    /// <summary>Starts reading stage <paramref name="stage"/>'s weights (or its first block in forward order) if a slot is free (NVMe); out-of-range stages are ignored.</summary>
    public void Prefetch(int stage)
    {
        if (_slots is null || stage < 0 || stage >= _layout.Stages.Count)
            return;
        if (_layout.RangeOfStage(stage) is int range)
            PrefetchRange(range);
        else if (_layout.Blocks(stage) is { Count: > 0 } blocks)
            PrefetchRange(blocks[0].Range);
    }

    private void PrefetchRange(int range)
    {
        if (PrefetchGate?.Invoke(_layout.Ranges[range]) != false)
            _slots!.Prefetch(range);
    }

    /// <summary>Forgets the resident copies after the optimizer rewrote the weight file (no stage may be held).</summary>
    public void Invalidate()
    {
        if (HeldStageCount > 0)
            throw new InvalidOperationException("A stage's weights are still held; dispose its lease before the weights change.");
        _slots?.Invalidate();
    }

    /// <summary>A tensor that owns a copy of <paramref name="parameter"/>'s current weights (to give a model its weights back).</summary>
    public Tensor ReadOwned(int parameter)
    {
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        if (_resident is not null)
            return Owned(_residentViews[parameter]!.Clone());
        int stage = Enumerable.Range(0, _layout.Stages.Count).First(s => _layout.Stages[s].Uses.Contains(parameter));
        if (_layout.Blocks(stage) is { } blocks)
        {
            Tensor whole = Owned(FineTune.Torch.Torch.Empty(_layout.Parameters[parameter].Shape, _dtype));
            for (int b = 0; b < blocks.Count; b++)
                using (StageLease block = AcquireBlock(stage, b, 0))
                    whole.Narrow(0, blocks[b].FirstRow, blocks[b].Rows).CopyFrom(block.Get(parameter));
            return whole;
        }
        using StageLease lease = Acquire(stage, 0);
        return Owned(lease.Get(parameter).Clone());
    }

    internal void Release(int stage, int? blockRange = null)
    {
        if (_disposed)
            return; // a lease outliving the store: its memory is gone with the store already
        if (_stageUsers[stage] <= 0)
            throw new InvalidOperationException($"Stage {stage}'s weights were released but not held.");
        _stageUsers[stage]--;
        if (_resident is not null || (blockRange ?? _layout.RangeOfStage(stage)) is not int range || --_rangeUsers[range] > 0)
            return;
        foreach (Tensor view in _rangeViews[range]!.Values)
            view.Dispose();
        _rangeViews[range] = null;
        _slots!.Release(range);
    }

    public void Dispose()
    {
        _disposed = true;
        ReleaseScratch();
        _staging?.Dispose();
        foreach (Tensor? view in _residentViews)
            view?.Dispose();
        Array.Clear(_residentViews);
        foreach (Dictionary<int, Tensor>? views in _rangeViews)
            foreach (Tensor view in views?.Values ?? Enumerable.Empty<Tensor>())
                view.Dispose();
        _slots?.Dispose();
        _writeBack?.Dispose();
        _file?.Dispose();
        _resident?.Dispose();
    }

    /// <summary>Views of every parameter inside range <paramref name="range"/> (or of a block's rows), whose first element is at <paramref name="first"/>.</summary>
    private Dictionary<int, Tensor> Bind(int range, nint first)
    {
        WeightRange r = _layout.Ranges[range];
        var views = new Dictionary<int, Tensor>();
        if (_layout.BlockOfRange(range) is { } block)
        {
            long[] shape = [block.Rows, .. _layout.Parameters[block.Parameter].Shape[1..]];
            Tensor rows = Owned(FineTune.Torch.Torch.FromPointer(first, shape, _dtype));
            rows.RequiresGrad = true;
            views[block.Parameter] = rows;
            return views;
        }
        for (int p = 0; p < _layout.Parameters.Count; p++)
        {
            long offset = _layout.FlatOffset(p) - r.First;
            if (offset >= 0 && offset + _layout.Parameters[p].ElementCount <= r.Count)
                views[p] = View(p, first + (nint)(offset * _layout.WeightType.ByteCount()));
        }
        return views;
    }

    private Tensor View(int parameter, nint address)
    {
        Tensor view = Owned(FineTune.Torch.Torch.FromPointer(address, _layout.Parameters[parameter].Shape, _dtype));
        view.RequiresGrad = !_options.ReadOnly; // a frozen weight is a constant to autograd
        return view;
    }

    /// <summary>Layer slots, and one slot for a large embedding/LM head — two when it computes by blocks (one computing, one read ahead).</summary>
    private static IReadOnlyList<WeightSlotClass> SlotClasses(ParameterLayout layout, ParameterStoreOptions options) => layout.HasEdgeRange
        ? [new WeightSlotClass(BufferKind.LayerWeightSlots, options.LayerSlots),
            new WeightSlotClass(BufferKind.EdgeWeightSlots, Enumerable.Range(0, layout.Stages.Count).Any(s => layout.Blocks(s) is not null) ? 2 : 1)]
        : [new WeightSlotClass(BufferKind.LayerWeightSlots, options.LayerSlots)];

    /// <summary>These tensors outlive whatever scope the caller has open.</summary>
    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;
}
