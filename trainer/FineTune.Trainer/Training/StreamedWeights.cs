using FineTune.IO;
using FineTune.Offload.Memory;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training;

/// <summary>
/// Parameter offload: the model's low-precision weights live in a <see cref="WeightFile"/> on NVMe and only the
/// stages in use are resident, in a few pool slots (<see cref="WeightSlots"/>). <see cref="Use"/> brings a stage's
/// weights in (its parameters become views of the slot) and prefetches the next stages in the direction of travel,
/// so layer i+1's weights are read while layer i computes; disposing the handle evicts them again. The optimizer
/// writes updated weights straight to the file (<see cref="WeightWriteBack"/>); <see cref="Invalidate"/> then drops
/// the stale resident copies. Installed on the model as its <see cref="IWeightResidency"/>, so evaluation and export
/// stream the same way; <see cref="RestoreOwned"/> gives the model ordinary tensors back.
/// Slots: decoder layers and the final norm share one class (<see cref="TrainingOptions.ParameterSlots"/> slots);
/// an embedding or LM head larger than a layer gets one slot of its own size, shared by both (a tied head reads
/// the embedding's range, which is then often still resident). Not thread-safe: the compute thread only.
/// DESIGN: "params of layer i+1 prefetched (device &lt;- pinned &lt;- NVMe when params are offloaded)".
/// </summary>
internal sealed class StreamedWeights : IWeightResidency, IDisposable
{
    internal const string LayerSlotClass = "weight slots (layers)";
    internal const string EdgeSlotClass = "weight slots (embedding, lm_head)";

    private readonly LlamaModel _model;
    private readonly WeightFile _file;
    private readonly WeightSlots _slots;
    private readonly Layout _layout;
    private readonly int _prefetchDepth;
    private readonly int[] _useCount;
    private readonly nint[] _firstElement;
    private readonly Dictionary<NamedParameter, int> _users = new();
    private readonly Dictionary<NamedParameter, int> _boundTo = new();
    private bool _uninstalled;

    public StreamedWeights(LlamaModel model, WeightFile file, HostMemoryPool pool, WeightCounters counters, int layerSlots)
    {
        _model = model;
        _file = file;
        _layout = Layout.Of(model.Config, layerSlots);
        if (model.Stages.Count != _layout.RangeOfStage.Length)
            throw new ArgumentException($"The model has {model.Stages.Count} stages but its config describes {_layout.RangeOfStage.Length}.", nameof(model));
        foreach (var (parameter, offset) in ParameterBuffers.FlatOffsets(model))
            if (_layout.Offsets[parameter.Name] != offset)
                throw new ArgumentException($"{parameter.Name} sits at element {offset} of the optimizer's flat space but at {_layout.Offsets[parameter.Name]} of the weight file.", nameof(model));
        _prefetchDepth = Math.Max(0, layerSlots - 1);
        _slots = new WeightSlots(file, pool, _layout.Ranges, _layout.Classes, counters);
        _useCount = new int[model.Stages.Count];
        _firstElement = new nint[model.Stages.Count];
        foreach (NamedParameter parameter in model.Parameters)
            parameter.Evict();
        model.Residency = this;
    }

    public WeightCounters Counters => _slots.Counters;

    /// <summary>Stages currently held (by a Use handle not yet disposed).</summary>
    public int HeldStageCount => _useCount.Count(c => c > 0);

    /// <summary>
    /// Writes every weight of <paramref name="model"/> into <paramref name="file"/> in the flat order, one parameter
    /// resident at a time when the model is opened lazily (<see cref="LlamaModel.Open"/>), through a page-aligned
    /// staging buffer. The model's own tensors are not changed.
    /// </summary>
    public static void FillFile(WeightFile file, LlamaModel model)
    {
        const long stagingBytes = 8L << 20;
        int elementBytes = file.ElementByteCount;
        long stagingElements = stagingBytes / elementBytes;
        using var staging = new AlignedBuffer(stagingBytes);
        long written = 0, filled = 0;
        void WriteOut()
        {
            file.WriteAsync(written, filled, staging).AsTask().GetAwaiter().GetResult();
            written += filled;
            filled = 0;
        }
        foreach (NamedParameter parameter in model.Parameters)
        {
            using (model.UseWeights(parameter))
            using (TensorScope.Enter())
            using (FineTune.Torch.Torch.NoGrad())
            {
                Tensor flat = parameter.Tensor.Detach().To(Device.Cpu).Reshape(-1);
                for (long done = 0; done < parameter.Spec.ElementCount;)
                {
                    long take = Math.Min(parameter.Spec.ElementCount - done, stagingElements - filled);
                    FineTune.Torch.Torch.FromPointer(staging.Address + (nint)(filled * elementBytes), [take], model.DType).CopyFrom(flat.Narrow(0, done, take));
                    done += take;
                    filled += take;
                    if (filled == stagingElements)
                        WriteOut();
                }
            }
        }
        if (filled > 0)
            WriteOut();
    }

    /// <summary>Adds the slot buffers for a model of <paramref name="config"/> with <paramref name="elementByteCount"/>-byte weights to <paramref name="plan"/>.</summary>
    public static void AddToPlan(PoolPlan plan, LlamaConfig config, int elementByteCount, int layerSlots)
    {
        Layout layout = Layout.Of(config, layerSlots);
        WeightSlots.AddToPlan(plan, elementByteCount, layout.Ranges, layout.Classes);
    }

    public IDisposable Use(int stageIndex, int direction)
    {
        Acquire(stageIndex);
        for (int ahead = 1; direction != 0 && ahead <= _prefetchDepth; ahead++)
            Prefetch(stageIndex + ahead * direction);
        return new Handle(this, stageIndex);
    }

    public IDisposable Use(NamedParameter parameter)
    {
        for (int s = 0; s < _model.Stages.Count; s++)
            if (LlamaModel.StageWeights(_model.Stages[s]).Contains(parameter))
                return Use(s, +1);
        throw new ArgumentException($"{parameter.Name} is not a parameter of this model.", nameof(parameter));
    }

    /// <summary>Starts reading stage <paramref name="stageIndex"/>'s weights if a slot is free; out-of-range stages are ignored.</summary>
    public void Prefetch(int stageIndex)
    {
        if (stageIndex >= 0 && stageIndex < _layout.RangeOfStage.Length && _layout.RangeOfStage[stageIndex] is int range)
            _slots.Prefetch(range);
    }

    /// <summary>Forgets the resident copies after the optimizer rewrote the weights (no stage may be in use).</summary>
    public void Invalidate() => _slots.Invalidate();

    /// <summary>
    /// Reads every weight back into tensors the model owns and uninstalls the streaming (engine Dispose). A parameter
    /// whose read fails is left non-resident, never pointing into the slots that die with the pool.
    /// </summary>
    public void RestoreOwned()
    {
        _model.Residency = null;
        _uninstalled = true; // handles still open become no-ops: the tensors below are the model's own
        try
        {
            var restored = new HashSet<NamedParameter>();
            for (int s = 0; s < _model.Stages.Count; s++)
            {
                if (_layout.RangeOfStage[s] is not int range)
                    continue;
                nint first = _slots.Acquire(range);
                try
                {
                    foreach (NamedParameter parameter in LlamaModel.StageWeights(_model.Stages[s]).Where(restored.Add))
                    {
                        using Tensor view = View(parameter, first, range);
                        Tensor owned = Owned(view.Clone());
                        owned.RequiresGrad = true;
                        parameter.Tensor = owned;
                        _boundTo.Remove(parameter);
                    }
                }
                finally
                {
                    _slots.Release(range);
                }
            }
        }
        finally
        {
            Abandon();
        }
    }

    /// <summary>
    /// Uninstalls the streaming without reading anything back: every parameter is left non-resident (engine Dispose
    /// with <see cref="TrainingOptions.RestoreWeightsOnDispose"/> false). The slots' views must not outlive the pool.
    /// </summary>
    public void Abandon()
    {
        _model.Residency = null;
        _uninstalled = true;
        foreach (NamedParameter parameter in _boundTo.Keys)
            parameter.Evict();
        _boundTo.Clear();
    }

    public void Dispose() => _slots.Dispose();

    private void Acquire(int stageIndex)
    {
        if (_layout.RangeOfStage[stageIndex] is not int range || ++_useCount[stageIndex] > 1)
            return;
        try
        {
            _firstElement[stageIndex] = _slots.Acquire(range);
        }
        catch
        {
            _useCount[stageIndex]--;
            throw;
        }
        foreach (NamedParameter parameter in LlamaModel.StageWeights(_model.Stages[stageIndex]))
        {
            _users[parameter] = _users.GetValueOrDefault(parameter) + 1;
            if (!_boundTo.ContainsKey(parameter))
                Bind(parameter, stageIndex);
        }
    }

    private void Release(int stageIndex)
    {
        if (_uninstalled || _layout.RangeOfStage[stageIndex] is not int range || --_useCount[stageIndex] > 0)
            return;
        foreach (NamedParameter parameter in LlamaModel.StageWeights(_model.Stages[stageIndex]))
        {
            int users = --_users[parameter];
            if (_boundTo[parameter] != stageIndex)
                continue;
            _boundTo.Remove(parameter);
            if (users == 0)
                parameter.Evict();
            else
                Bind(parameter, Enumerable.Range(0, _useCount.Length).First(s => _useCount[s] > 0 && LlamaModel.StageWeights(_model.Stages[s]).Contains(parameter)));
        }
        _slots.Release(range);
    }

    /// <summary>Points <paramref name="parameter"/> at its elements in stage <paramref name="stageIndex"/>'s slot (a leaf that requires grad).</summary>
    private void Bind(NamedParameter parameter, int stageIndex)
    {
        Tensor view = Owned(View(parameter, _firstElement[stageIndex], _layout.RangeOfStage[stageIndex]!.Value));
        view.RequiresGrad = true;
        parameter.Tensor = view;
        _boundTo[parameter] = stageIndex;
    }

    private Tensor View(NamedParameter parameter, nint rangeFirst, int range)
    {
        long element = _layout.Offsets[parameter.Name] - _layout.Ranges[range].First;
        return FineTune.Torch.Torch.FromPointer(rangeFirst + (nint)(element * _file.ElementByteCount), parameter.Spec.Shape.ToArray(), _model.DType);
    }

    /// <summary>These tensors outlive whatever scope the caller has open.</summary>
    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;

    /// <summary>
    /// Each stage's range of the flat weight space (stages with the same range share one) and the slot classes,
    /// from the config alone (so the run planner sizes the same slots without loading weights).
    /// </summary>
    private sealed record Layout(IReadOnlyDictionary<string, long> Offsets, int?[] RangeOfStage, IReadOnlyList<WeightRange> Ranges, IReadOnlyList<WeightSlotClass> Classes)
    {
        public static Layout Of(LlamaConfig config, int layerSlots)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(layerSlots, 1);
            IReadOnlyList<ParameterSpec> all = LlamaTensorNames.All(config);
            var offsets = new Dictionary<string, long>(StringComparer.Ordinal);
            long total = 0;
            foreach (ParameterSpec spec in all)
            {
                offsets[spec.Name] = total;
                total += spec.ElementCount;
            }
            ParameterSpec Named(string name) => all.Single(s => s.Name == name);
            // embedding, layers, final norm, LM head: the stages of LlamaModel, each with the weights it computes with
            var stages = new List<(IReadOnlyList<ParameterSpec> Weights, bool Edge)> { ([all[0]], true) };
            for (int i = 0; i < config.LayerCount; i++)
                stages.Add((LlamaTensorNames.Layer(config, i), false));
            stages.Add(([Named(LlamaTensorNames.FinalNorm)], false));
            stages.Add(([config.TieWordEmbeddings ? all[0] : Named(LlamaTensorNames.LmHead)], true));

            var spans = stages.Select(stage => (First: stage.Weights.Min(w => offsets[w.Name]), End: stage.Weights.Max(w => offsets[w.Name] + w.ElementCount))).ToArray();
            long layerMax = stages.Select((stage, s) => stage.Edge ? 0 : spans[s].End - spans[s].First).Max();
            bool edgeClass = stages.Select((stage, s) => stage.Edge && spans[s].End - spans[s].First > layerMax).Any(b => b);
            var ranges = new List<WeightRange>();
            var rangeOfStage = new int?[stages.Count];
            for (int s = 0; s < stages.Count; s++)
            {
                var range = new WeightRange(spans[s].First, spans[s].End - spans[s].First, edgeClass && stages[s].Edge ? 1 : 0);
                int existing = ranges.IndexOf(range);
                rangeOfStage[s] = existing >= 0 ? existing : ranges.Count;
                if (existing < 0)
                    ranges.Add(range);
            }
            WeightSlotClass[] classes = edgeClass
                ? [new WeightSlotClass(LayerSlotClass, layerSlots), new WeightSlotClass(EdgeSlotClass, 1)]
                : [new WeightSlotClass(LayerSlotClass, layerSlots)];
            return new Layout(offsets, rangeOfStage, ranges, classes);
        }
    }

    private sealed class Handle(StreamedWeights owner, int stageIndex) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
                return;
            _disposed = true;
            owner.Release(stageIndex);
        }
    }
}
