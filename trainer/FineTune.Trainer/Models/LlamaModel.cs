using FineTune.Offload.Memory;
using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// A Llama-family causal LM as a sequence of layers (<see cref="Stages"/>: embedding, decoder layers, final norm,
/// LM head), each with its own forward and recompute-backward (<see cref="IModelLayer"/>), plus whole-model
/// <see cref="Forward"/> and <see cref="Loss"/> for evaluation and tests. Parameters carry their HF names and come
/// in one stable order (<see cref="Parameters"/>, the order of <see cref="LlamaTensorNames.All"/>). All parameters
/// share one dtype and device. Owns its tensors: Dispose frees them and the RoPE tables.
/// Made by <see cref="Load"/> (an HF folder) or <see cref="Create"/> (seeded initialisation from a config).
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly RotaryEmbedding _rope;
    private CheckpointWeights? _checkpoint;
    private GeneratedWeights? _generated;

    internal LlamaModel(LlamaConfig config, IReadOnlyDictionary<string, Tensor> tensors, DType dtype, Device device)
    {
        Config = config;
        DType = dtype;
        Device = device;
        _rope = new RotaryEmbedding(config);
        NamedParameter Take(ParameterSpec spec) => tensors.TryGetValue(spec.Name, out Tensor? tensor) ? new(spec, tensor) : new(spec);

        IReadOnlyList<ParameterSpec> specs = LlamaTensorNames.All(config);
        var embedding = Take(specs[0]);
        Embedding = new EmbeddingLayer(embedding);
        var layers = new DecoderLayer[config.LayerCount];
        for (int i = 0; i < layers.Length; i++)
            layers[i] = new DecoderLayer(config, i, _rope, LlamaTensorNames.Layer(config, i).Select(Take).ToArray());
        Layers = layers;
        FinalNorm = new FinalNormLayer(Take(specs.Single(s => s.Name == LlamaTensorNames.FinalNorm)), config.RmsNormEps);
        LmHead = config.TieWordEmbeddings
            ? new LmHeadLayer(embedding, tied: true)
            : new LmHeadLayer(Take(specs.Single(s => s.Name == LlamaTensorNames.LmHead)), tied: false);
        Stages = [Embedding, .. Layers, FinalNorm, LmHead];
        Parameters = Stages.SelectMany(stage => stage.Parameters).ToArray();
    }

    public LlamaConfig Config { get; }

    public DType DType { get; }

    public Device Device { get; }

    public EmbeddingLayer Embedding { get; }

    public IReadOnlyList<DecoderLayer> Layers { get; }

    public FinalNormLayer FinalNorm { get; }

    public LmHeadLayer LmHead { get; }

    /// <summary>Embedding, layer 0 .. L-1, final norm, LM head: run forward in this order, backward in reverse.</summary>
    public IReadOnlyList<IModelLayer> Stages { get; }

    /// <summary>Every parameter once (tied embeddings appear once), in the stable HF order.</summary>
    public IReadOnlyList<NamedParameter> Parameters { get; }

    public long ParameterCount => Parameters.Sum(p => p.Spec.ElementCount);

    /// <summary>
    /// Where the weights come from now: the model's own tensors, the checkpoint it was opened from
    /// (<see cref="Open"/>: read stage by stage), or a training engine's parameter store while an engine holds the
    /// model (handed over with <see cref="LendWeights"/> and back with <see cref="ReturnWeights"/>).
    /// </summary>
    public IWeightSource Weights { get; private set; } = ResidentWeights.Instance;

    /// <summary>True when every parameter is in memory (Load, Create, or after an engine gave them back).</summary>
    public bool IsResident => Parameters.All(p => p.IsResident);

    /// <summary>
    /// <paramref name="parameter"/>'s weights held until the lease is disposed (read them as <c>lease[parameter]</c>):
    /// free for a resident model, one read for a model opened lazily or streamed by a training engine.
    /// </summary>
    public StageWeights UseWeights(NamedParameter parameter)
    {
        if (parameter.IsResident)
            return StageWeights.Resident;
        if (Weights is CheckpointWeights checkpoint)
            return checkpoint.Acquire(parameter);
        for (int s = 0; s < Stages.Count; s++)
            if (WeightsOf(Stages[s]).Contains(parameter))
                return Weights.Acquire(s, 0);
        throw new ArgumentException($"{parameter.Name} is not a parameter of this model.", nameof(parameter));
    }

    /// <summary>Reads every weight not yet in memory and keeps it (a model opened lazily becomes an ordinary one).</summary>
    internal void MakeResident()
    {
        if (Weights is not (CheckpointWeights or GeneratedWeights))
            return;
        foreach (NamedParameter parameter in Parameters.Where(p => !p.IsResident))
        {
            Tensor whole = FineTune.Torch.Torch.Empty(parameter.Spec.Shape, DType, Device);
            whole = TensorScope.Current?.Detach(whole) ?? whole;
            using (FineTune.Torch.Torch.NoGrad())
                foreach (var (offset, values) in ReadChunks(parameter))
                    using (TensorScope.Enter())
                        whole.Reshape(-1).Narrow(0, offset, values.NumElements).CopyFrom(values.Reshape(-1));
            parameter.Tensor = whole;
        }
        CloseCheckpoint();
        Weights = ResidentWeights.Instance;
    }

    /// <summary>
    /// A training engine takes the weights over: it has copied every one (through <see cref="UseWeights"/>) into
    /// its parameter store, so the model's own tensors are freed, a checkpoint it was opened from is closed (a pruned
    /// checkpoint frees its disk space), and from now on <paramref name="source"/> serves them.
    /// </summary>
    internal void LendWeights(IWeightSource source)
    {
        foreach (NamedParameter parameter in Parameters)
            parameter.Evict();
        CloseCheckpoint();
        Weights = source;
    }

    /// <summary>
    /// The engine lets go: with <paramref name="owned"/>, every parameter gets the tensor it returns (the trained
    /// weights, owning their memory); without, the weights are gone (they ended with the engine's weight file).
    /// </summary>
    internal void ReturnWeights(Func<NamedParameter, Tensor>? owned)
    {
        if (owned is null)
        {
            Weights = UnavailableWeights.Instance;
            return;
        }
        foreach (NamedParameter parameter in Parameters)
        {
            Tensor tensor = owned(parameter);
            tensor.RequiresGrad = true;
            parameter.Tensor = tensor;
        }
        Weights = ResidentWeights.Instance;
    }

    private void CloseCheckpoint()
    {
        _checkpoint?.Dispose();
        _checkpoint = null;
        _generated?.Dispose();
        _generated = null;
    }

    /// <summary>Reads DIR/config.json and the safetensors weights, converted to <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public static LlamaModel Load(string folder, DType dtype, Device device)
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(folder);
        var model = new LlamaModel(config, LlamaCheckpointReader.Read(folder, config, dtype, device), dtype, device);
        ProcessMemory.ReturnFreedHeapMemory(); // the conversion temporaries' heap pages (see ProcessMemory)
        return model;
    }

    /// <summary>
    /// Opens DIR/config.json and checks the safetensors headers against it, but reads no weights: each stage's are
    /// read from the checkpoint when used (<see cref="Forward"/>, export, a training engine's setup) and freed after,
    /// so a model larger than host memory can be evaluated or exported, and a training engine with parameter offload
    /// never holds all of its weights at once. The files stay open until Dispose.
    /// </summary>
    public static LlamaModel Open(string folder, DType dtype, Device device)
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(folder);
        var model = new LlamaModel(config, new Dictionary<string, Tensor>(), dtype, device);
        try
        {
            model._checkpoint = new CheckpointWeights(model, folder);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.Weights = model._checkpoint;
        return model;
    }

    /// <summary>The weights a stage computes with: its own, or for a tied LM head the embedding's.</summary>
    public static IReadOnlyList<NamedParameter> WeightsOf(IModelLayer stage) =>
        stage is LmHeadLayer head ? [head.Weight] : stage.Parameters;

    /// <summary>
    /// A fresh model whose seeded weights are drawn when used, chunk by chunk (<see cref="LlamaInitializer.Generate"/>),
    /// never held whole: a training engine fills its store (host, or NVMe for a model larger than host memory) from it
    /// one chunk at a time. The weights equal <see cref="Create"/>'s with the same seed.
    /// </summary>
    public static LlamaModel CreateStreamed(LlamaConfig config, long seed, DType dtype, Device device)
    {
        config.Validate("the model config");
        var model = new LlamaModel(config, new Dictionary<string, Tensor>(), dtype, device);
        model._generated = new GeneratedWeights(model, seed);
        model.Weights = model._generated;
        return model;
    }

    /// <summary>
    /// <paramref name="parameter"/>'s current values as consecutive chunks (first element, values), each valid until
    /// the enumeration moves on: one chunk for resident or checkpoint weights, row chunks for a streamed creation.
    /// </summary>
    internal IEnumerable<(long Offset, Tensor Values)> ReadChunks(NamedParameter parameter)
    {
        if (!parameter.IsResident && Weights is GeneratedWeights generated)
        {
            int index = Parameters.Select((p, i) => (p, i)).First(x => ReferenceEquals(x.p, parameter)).i;
            foreach (var chunk in generated.Chunks(index))
                yield return chunk;
            yield break;
        }
        if (!parameter.IsResident && Weights is not CheckpointWeights)
        {
            int stage = Enumerable.Range(0, Stages.Count).First(s => WeightsOf(Stages[s]).Contains(parameter));
            if (Weights.Blocks(stage) is { } blocks)
            {
                // a blocked embedding or LM head: its row blocks in order, one in memory at a time
                long rowElements = parameter.Spec.ElementCount / parameter.Spec.Shape[0];
                for (int b = 0; b < blocks.Count; b++)
                {
                    using StageWeights block = Weights.AcquireBlock(stage, b, +1);
                    yield return (blocks[b].FirstRow * rowElements, block[parameter]);
                }
                yield break;
            }
        }
        using StageWeights weights = UseWeights(parameter);
        yield return (0, weights[parameter]);
    }

    /// <summary>A fresh model with seeded weights (<see cref="LlamaInitializer"/>): the same seed gives the same weights on any device.</summary>
    public static LlamaModel Create(LlamaConfig config, long seed, DType dtype, Device device)
    {
        config.Validate("the model config");
        var model = new LlamaModel(config, LlamaInitializer.Initialize(config, seed, dtype, device), dtype, device);
        ProcessMemory.ReturnFreedHeapMemory(); // the random draws' heap pages (see ProcessMemory): 0.55 GiB of a 336M model
        return model;
    }

    /// <summary>Makes every parameter a leaf that requires grad (for training) or not (for evaluation).</summary>
    public void SetRequiresGrad(bool requiresGrad)
    {
        foreach (NamedParameter parameter in Parameters.Where(p => p.IsResident))
            parameter.Tensor.RequiresGrad = requiresGrad;
    }

    /// <summary>Clears every resident parameter's accumulated gradient.</summary>
    public void ClearGrads()
    {
        foreach (NamedParameter parameter in Parameters.Where(p => p.IsResident))
            parameter.Tensor.Grad = null;
    }

    /// <summary>
    /// ids (B, T) int64 -> logits (B, T, V) in the model's dtype, running every stage in order. While a training
    /// engine streams the weights, each stage's are brought in for its turn (the next prefetched) and let go after,
    /// which is only sound without autograd: run it under no-grad then.
    /// </summary>
    public Tensor Forward(Tensor ids)
    {
        CheckIds(ids);
        if (!Weights.IsResident && FineTune.Torch.Torch.IsGradEnabled)
            throw new InvalidOperationException("This model's weights are streamed stage by stage (LlamaModel.Open, or a training engine's parameter store): run model.Forward under Torch.NoGrad(), and train through a TrainingEngine.");
        using (TensorScope.Enter())
        {
            Tensor x = ids;
            long[]? tokens = null;
            for (int s = 0; s < Stages.Count; s++)
            {
                if (Weights.Blocks(s) is { } blocks)
                {
                    int stage = s;
                    x = Stages[s] is EmbeddingLayer embedding
                        ? EdgeBlocks.EmbeddingForward(embedding, ids, tokens ??= ids.Contiguous().ToArray<long>(), blocks, j => Weights.AcquireBlock(stage, j, +1), Config.HiddenSize, DType)
                        : EdgeBlocks.HeadForward(LmHead, x, blocks, j => Weights.AcquireBlock(stage, j, +1), Config.VocabSize);
                    continue;
                }
                using StageWeights weights = Weights.Acquire(s, +1);
                x = Stages[s].Forward(x, weights);
            }
            return x.MoveToOuterScope();
        }
    }

    /// <summary>Mean next-token cross-entropy (float32 scalar) of ids (B, T) against HF-style labels (B, T), -100 = ignored.</summary>
    public Tensor Loss(Tensor ids, Tensor labels)
    {
        using (TensorScope.Enter())
            return CausalLmLoss.FromLabels(Forward(ids), labels).MoveToOuterScope();
    }

    public void Dispose()
    {
        foreach (NamedParameter parameter in Parameters)
            parameter.Dispose();
        _rope.Dispose();
        _checkpoint?.Dispose();
        _generated?.Dispose();
    }

    private void CheckIds(Tensor ids)
    {
        long[] shape = ids.Shape;
        if (shape.Length != 2 || ids.DType != DType.Int64)
            throw new ArgumentException($"token ids must be (B, T) int64, got [{string.Join(", ", shape)}] {ids.DType}.", nameof(ids));
        if (shape[1] > Config.MaxPositionEmbeddings)
            throw new UserErrorException(
                $"sequences of {shape[1]} tokens exceed the model's max_position_embeddings ({Config.MaxPositionEmbeddings}); use a shorter sequence length.");
    }
}
