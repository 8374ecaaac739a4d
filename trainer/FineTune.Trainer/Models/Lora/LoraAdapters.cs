using FineTune.Torch;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// Every LoRA adapter of a model (one per target projection per decoder layer, layer-major, projections in
/// canonical order) plus what they share: the config, the training seed of their dropout masks and the current
/// training position. <see cref="AttachTo"/> hooks them into the model's decoder layers; from then on every
/// forward of the model (and every layer's recompute-backward) includes them. The base model is not changed:
/// detach, and it computes exactly what it did before.
/// What trains: the adapters' A and B (<see cref="Parameters"/>, float32, resident on the model's device, leaves
/// that require grad) and the base parameters of <see cref="LoraConfig.Trainable"/> (<see cref="TrainableBaseParameterNames"/>).
/// Everything else of the base is frozen: set requires_grad false on it (model.SetRequiresGrad(false)) and give
/// it no gradient buffer, master copy or optimizer state.
/// Dropout: off unless <see cref="DropoutPosition"/> is set (training) and the config's dropout is above 0.
/// Owns its tensors: Dispose detaches and frees them.
/// </summary>
public sealed class LoraAdapters : IDisposable
{
    private readonly LlamaConfig _modelConfig;
    private LlamaModel? _attachedTo;

    internal LoraAdapters(LlamaConfig modelConfig, LoraConfig config, IReadOnlyList<LoraAdapter> adapters, long seed)
    {
        config.Validate();
        _modelConfig = modelConfig;
        Config = config;
        Adapters = adapters;
        Seed = seed;
        Parameters = adapters.SelectMany(a => new[] { a.A, a.B }).ToArray();
        TrainableBaseParameterNames = LoraTrainableModules.ParameterNames(modelConfig, config.Trainable);
    }

    public LoraConfig Config { get; }

    public IReadOnlyList<LoraAdapter> Adapters { get; }

    /// <summary>A and B of every adapter, in adapter order: the tensors the optimizer updates (with the trainable extras).</summary>
    public IReadOnlyList<NamedParameter> Parameters { get; }

    /// <summary>Elements of <see cref="Parameters"/>.</summary>
    public long ParameterCount => Adapters.Sum(a => a.ParameterCount);

    /// <summary>HF names of the base parameters trained in full (model.lora.trainable), in the model's order.</summary>
    public IReadOnlyList<string> TrainableBaseParameterNames { get; }

    /// <summary>The training seed the dropout masks derive from (training.seed).</summary>
    public long Seed { get; }

    /// <summary>The model the adapters are hooked into (<see cref="AttachTo"/>), or null.</summary>
    public LlamaModel? AttachedTo => _attachedTo;

    /// <summary>Set by the training loop before each micro-batch's forward (and left for its backward); null: evaluation, no dropout.</summary>
    public LoraDropoutPosition? DropoutPosition { get; set; }

    /// <summary>
    /// Fresh adapters for <paramref name="model"/>: A Kaiming-uniform from a generator seeded with <paramref name="seed"/>
    /// (drawn in adapter order, so a seed gives the same adapters on every device), B zero.
    /// </summary>
    public static LoraAdapters Create(LlamaModel model, LoraConfig config, long seed)
    {
        config.Validate();
        var adapters = new List<LoraAdapter>();
        try
        {
            using var generator = new Generator(seed);
            for (int layer = 0; layer < model.Config.LayerCount; layer++)
                foreach (string module in config.Targets)
                    adapters.Add(LoraAdapter.Create(model.Config, layer, module, config.Rank, config.Scale, generator, model.Device));
            return new LoraAdapters(model.Config, config, adapters, seed);
        }
        catch
        {
            foreach (LoraAdapter adapter in adapters)
                adapter.Dispose();
            throw;
        }
    }

    /// <summary>Hooks the adapters into <paramref name="model"/>'s decoder layers (one set per model at a time).</summary>
    public void AttachTo(LlamaModel model)
    {
        if (!model.Config.Equals(_modelConfig))
            throw new ArgumentException("these adapters were made for a model of another shape.", nameof(model));
        if (_attachedTo is not null || model.Layers.Any(l => l.Lora is not null))
            throw new InvalidOperationException("the model already has LoRA adapters attached; detach them first.");
        foreach (DecoderLayer layer in model.Layers)
            layer.Lora = new LoraLayer(this, layer.Index, Adapters.Where(a => a.Layer == layer.Index).ToArray());
        _attachedTo = model;
    }

    /// <summary>Removes the adapters from the model they are attached to (no-op when none).</summary>
    public void Detach()
    {
        if (_attachedTo is null)
            return;
        foreach (DecoderLayer layer in _attachedTo.Layers)
            layer.Lora = null;
        _attachedTo = null;
    }

    /// <summary>The adapter of the projection whose weight is <paramref name="baseWeightName"/>, or null.</summary>
    public LoraAdapter? ForWeight(string baseWeightName) => Adapters.FirstOrDefault(a => a.BaseWeightName == baseWeightName);

    /// <summary>Clears every adapter's accumulated gradient.</summary>
    public void ClearGrads()
    {
        foreach (NamedParameter parameter in Parameters)
            parameter.Tensor.Grad = null;
    }

    public void Dispose()
    {
        Detach();
        foreach (LoraAdapter adapter in Adapters)
            adapter.Dispose();
    }

    /// <summary>(p, mask seed) for <paramref name="adapter"/>'s dropout now, or null when no mask is to be drawn.</summary>
    internal (double Probability, long Seed)? DropoutFor(LoraAdapter adapter) =>
        DropoutPosition is LoraDropoutPosition position && Config.Dropout > 0
            ? (Config.Dropout, LoraDropout.MaskSeed(Seed, position, adapter.Layer, LoraTargets.Index(adapter.Module)))
            : null;
}
