using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Seeded initialisation for from-scratch runs, as transformers' LlamaPreTrainedModel._init_weights: linear and
/// embedding weights ~ normal(0, initializer_range), biases zero, RMSNorm weights one, and the embedding row of
/// pad_token_id zeroed (nn.Embedding padding_idx). Values are drawn in float32 on the CPU from one generator in
/// the stable parameter order, then converted, so a seed gives the same model on every device and dtype.
/// A tensor is drawn in row chunks of at most <see cref="ChunkElementCount"/> elements (a multiple of 16 each, so
/// libtorch's normal_ consumes the generator exactly as for the whole tensor: no tail re-draw), which is how a model
/// larger than host memory is created one chunk at a time (<see cref="Generate"/>, <see cref="LlamaModel.CreateStreamed"/>)
/// and gives the same values as <see cref="Initialize"/>.
/// reference: transformers modeling_llama.py LlamaPreTrainedModel._init_weights; ATen's normal_fill (16-wide).
/// </summary>
public static class LlamaInitializer
{
    /// <summary>Largest chunk drawn at once: 16 Mi elements, 64 MiB of fp32.</summary>
    public const long ChunkElementCount = 16L << 20;

    /// <summary>Every parameter of <paramref name="config"/>, whole, in the stable order (its chunks copied together).</summary>
    public static Dictionary<string, Tensor> Initialize(LlamaConfig config, long seed, DType dtype, Device device)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        IReadOnlyList<ParameterSpec> specs = LlamaTensorNames.All(config);
        foreach (var (parameter, offset, values) in Generate(config, seed, dtype, device))
        {
            ParameterSpec spec = specs[parameter];
            if (offset == 0 && values.NumElements == spec.ElementCount)
            {
                result[spec.Name] = values;
                continue;
            }
            if (offset == 0)
                result[spec.Name] = Owned(Empty(spec.Shape, dtype, device));
            using (TensorScope.Enter())
            using (NoGrad())
                result[spec.Name].Reshape(-1).Narrow(0, offset, values.NumElements).CopyFrom(values.Reshape(-1));
            values.Dispose();
        }
        return result;
    }

    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;

    /// <summary>
    /// The parameters of <paramref name="config"/> in the stable order, each as consecutive row chunks (parameter index,
    /// first element, values (rows, ...) in <paramref name="dtype"/> on <paramref name="device"/>); the caller owns each
    /// chunk. Lazy: one chunk exists at a time unless the caller keeps them.
    /// </summary>
    public static IEnumerable<(int Parameter, long Offset, Tensor Values)> Generate(LlamaConfig config, long seed, DType dtype, Device device,
        long chunkElementCount = ChunkElementCount)
    {
        IReadOnlyList<ParameterSpec> specs = LlamaTensorNames.All(config);
        using var generator = new Generator(seed);
        for (int p = 0; p < specs.Count; p++)
        {
            ParameterSpec spec = specs[p];
            long rowElements = spec.Shape.Length > 1 ? spec.ElementCount / spec.Shape[0] : spec.ElementCount;
            long rows = spec.Shape.Length > 1 ? spec.Shape[0] : 1;
            // rows per chunk: as many as fit, a multiple of 16 rows (so every chunk is a multiple of 16 elements)
            long perChunk = Math.Max(16, chunkElementCount / Math.Max(1, rowElements) / 16 * 16);
            bool random = !spec.Name.EndsWith("norm.weight", StringComparison.Ordinal) && !spec.Name.EndsWith(".bias", StringComparison.Ordinal);
            if (!random || spec.Shape.Length < 2 || perChunk >= rows)
            {
                yield return (p, 0, Draw(config, spec, spec.Shape, 0, generator, random, dtype, device));
                continue;
            }
            for (long first = 0; first < rows; first += perChunk)
            {
                long count = Math.Min(perChunk, rows - first);
                long[] shape = [count, .. spec.Shape[1..]];
                yield return (p, first * rowElements, Draw(config, spec, shape, first, generator, random, dtype, device));
            }
        }
    }

    private static Tensor Draw(LlamaConfig config, ParameterSpec spec, long[] shape, long firstRow, Generator generator, bool random, DType dtype, Device device)
    {
        using (TensorScope.Enter())
        {
            Tensor host;
            if (!random)
                host = spec.Name.EndsWith("norm.weight", StringComparison.Ordinal) ? Ones(shape) : Zeros(shape);
            else
                host = Randn(shape, generator) * config.InitializerRange;
            if (spec.Name == LlamaTensorNames.Embedding && config.PadTokenId is int pad && pad >= firstRow && pad < firstRow + shape[0] && pad < config.VocabSize)
                host.Narrow(0, pad - firstRow, 1).FillInPlace(0.0);
            return host.To(device, dtype).MoveToOuterScope();
        }
    }
}
