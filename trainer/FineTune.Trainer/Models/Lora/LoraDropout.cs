using FineTune.Torch;
using FineTune.Trainer.Data;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// Inverted dropout on an adapter's input with a mask that is a pure function of a 63-bit seed, as PyTorch's
/// dropout computes it: keep each element with probability q = 1 - p and scale the kept ones by 1/q
/// (noise = mask / q; x * noise). The mask comes from u = torch.rand(shape) drawn on the CPU by a generator seeded
/// with <see cref="MaskSeed"/> (so it is the same on every device and in the Python reference, which draws it the
/// same way): keep where float32(u + q) truncates to 1, which is u >= p up to one rounding at the boundary.
/// The seed folds in (training seed, step, micro-batch, layer, projection) with SplitMix64, so forward and its
/// recompute in backward see the same mask and no state survives a step (see <see cref="LoraDropoutPosition"/>).
/// reference: aten/src/ATen/native/Dropout.cpp _dropout_impl (bernoulli_(1 - p), div_(1 - p), multiply).
/// </summary>
public static class LoraDropout
{
    /// <summary>x (..., in) float -> x * mask / (1 - p), mask drawn from <paramref name="seed"/>; p must be in (0, 1).</summary>
    public static Tensor Apply(Tensor x, double p, long seed)
    {
        if (!(p > 0 && p < 1))
            throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in (0, 1); p = 0 must not call dropout at all");
        double keep = 1 - p;
        using (TensorScope.Enter())
        {
            using var generator = new Generator(seed);
            Tensor u = Rand(x.Shape, generator, DType.Float32, x.Device);   // (..., in) in [0, 1)
            Tensor mask = (u + keep).To(DType.Int64).To(x.DType);          // 1 where u + q >= 1, else 0
            Tensor noise = mask / keep;
            return (x * noise).MoveToOuterScope();
        }
    }

    /// <summary>
    /// The mask seed of one projection's dropout: SplitMix64 chained over (training seed, step, micro-batch, layer,
    /// projection index in <see cref="LoraTargets.Modules"/>), top bit cleared so it is a non-negative long in C#
    /// and in Python. tests/reference/make_lora_fixtures.py computes the same numbers.
    /// </summary>
    public static long MaskSeed(long trainingSeed, LoraDropoutPosition position, int layer, int projection)
    {
        ulong state = unchecked((ulong)trainingSeed);
        foreach (ulong value in new[] { unchecked((ulong)position.Step), (ulong)(uint)position.MicroBatch, (ulong)(uint)layer, (ulong)(uint)projection })
            state = new SplitMix64(state ^ unchecked(value * 0xD1B54A32D192ED03UL)).NextUInt64();
        return (long)(state >> 1);
    }
}
