using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Torch;
using FineTune.Trainer.Models;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Planning;

/// <summary>
/// How long one decoder layer of the model's own shape takes on this machine, as the step runs it: its forward under
/// no-grad, and its backward as a recomputed layer does it (the forward again with grad, then back-propagation
/// into the weights and the input). Timed on a one-layer model with random weights, in the run's dtype, for the
/// micro-batch's tokens: the products, and every kernel besides them (norms, rotations, attention's softmax, SiLU,
/// the copies), which at small widths cost as much as the products; a product rate plus a fixed share for the rest
/// had the 0.06B step at two thirds of its measured time. A layer whose graph is kept or spilled skips the recompute:
/// its backward is <see cref="KeptBackwardSeconds"/>.
/// </summary>
public sealed record LayerRate(double ForwardSeconds, double BackwardSeconds)
{
    /// <summary>The backward of a layer whose graph was kept from forward: the recomputing backward less one forward.</summary>
    public double KeptBackwardSeconds => Math.Max(BackwardSeconds - ForwardSeconds, 0);

    /// <summary>
    /// Times a layer of <paramref name="config"/>'s shape in <paramref name="dtype"/> on the CPU for
    /// <paramref name="batch"/> x <paramref name="sequenceLength"/> tokens: one warm-up, then the median of at least
    /// five of each, and of as many more as fit in <see cref="SampleSeconds"/> (up to <see cref="MaxRounds"/>): a small
    /// layer's 25 ms forward moved by 20% between five-round probes on a shared VM. The one-layer model has a 256-token
    /// vocabulary (the layer's shape does not depend on it), so its memory is about one layer's weights and their
    /// gradients.
    /// </summary>
    public static LayerRate Measure(LlamaConfig config, DType dtype, int batch, int sequenceLength)
    {
        LlamaConfig one = config with
        {
            LayerCount = 1, VocabSize = 256, BosTokenId = null, EosTokenIds = [], PadTokenId = null,
            MaxPositionEmbeddings = Math.Max(config.MaxPositionEmbeddings, sequenceLength),
        };
        var forward = new List<double>();
        var backward = new List<double>();
        using (var model = LlamaModel.Create(one, seed: 1, dtype, Device.Cpu))
        using (TensorScope.Enter())
        {
            model.SetRequiresGrad(true);
            DecoderLayer layer = model.Layers[0];
            using var generator = new Generator(2);
            Tensor x = Randn([batch, sequenceLength, config.HiddenSize], generator).To(dtype);
            Tensor grad = Randn([batch, sequenceLength, config.HiddenSize], generator).To(dtype);
            long sampling = Stopwatch.GetTimestamp();
            for (int i = 0; i < 1 + MaxRounds && (i < 6 || Stopwatch.GetElapsedTime(sampling).TotalSeconds < SampleSeconds); i++)
            {
                using var round = TensorScope.Enter();
                long start = Stopwatch.GetTimestamp();
                using (NoGrad())
                    layer.Forward(x, StageWeights.Resident);
                double f = Stopwatch.GetElapsedTime(start).TotalSeconds;
                start = Stopwatch.GetTimestamp();
                layer.Backward(x, grad, StageWeights.Resident);
                double b = Stopwatch.GetElapsedTime(start).TotalSeconds;
                model.ClearGrads();
                if (i == 0)
                    continue; // warm-up: thread pool, packing buffers, oneDNN primitives
                forward.Add(f);
                backward.Add(b);
            }
        }
        ProcessMemory.ReturnFreedHeapMemory(); // the probe's weights and gradients: not part of the run's peak
        return new LayerRate(Median(forward), Median(backward));
    }

    /// <summary>Seconds a probe keeps adding rounds for, warm-up included; a layer whose round takes a sixth of it or more gets five.</summary>
    public const double SampleSeconds = 1.5;

    public const int MaxRounds = 31;

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
