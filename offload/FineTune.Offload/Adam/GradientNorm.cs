using System.Runtime.Intrinsics;

namespace FineTune.Offload.Adam;

/// <summary>
/// The global gradient L2 norm in one streaming pass over the gradient buffers that exist (fp32 or bf16), with
/// fp64 accumulation and no temporaries. The same pass is the overflow check dynamic loss scaling needs: the sum
/// of squares of finite floats cannot overflow a double (max 1.2e77 per element), so the sum is NaN or infinite
/// exactly when some gradient is. It must run before any sub-group is updated, because a sub-group already
/// written back cannot be undone when a later one turns out to hold a NaN.
/// Partial sums are per fixed chunk and added in chunk order, so the result does not depend on thread count.
/// </summary>
public static unsafe class GradientNorm
{
    /// <summary>Sum of squares of every element of every buffer (pointer, type, element count).</summary>
    public static double SumOfSquares(IReadOnlyList<(nint Pointer, ElementType Type, long ElementCount)> buffers, int maxDegreeOfParallelism = -1)
    {
        var chunks = new List<(int Buffer, long Start, long Count)>();
        for (int b = 0; b < buffers.Count; b++)
            for (long start = 0; start < buffers[b].ElementCount; start += CpuAdamW.ChunkElementCount)
                chunks.Add((b, start, Math.Min(CpuAdamW.ChunkElementCount, buffers[b].ElementCount - start)));
        var partial = new double[chunks.Count];
        Parallel.For(0, chunks.Count, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, c =>
        {
            (int index, long start, long count) = chunks[c];
            (nint pointer, ElementType type, _) = buffers[index];
            partial[c] = SumOfSquaresChunk(pointer + (nint)(start * type.ByteCount()), type, count);
        });
        double total = 0;
        foreach (double p in partial)
            total += p;
        return total;
    }

    internal static double SumOfSquaresFloat32(float* data, long elementCount)
    {
        long i = 0;
        Vector512<double> acc0 = Vector512<double>.Zero, acc1 = Vector512<double>.Zero;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= elementCount; i += 16)
            {
                (Vector512<double> lower, Vector512<double> upper) = Vector512.Widen(Vector512.Load(data + i));
                acc0 = Vector512.FusedMultiplyAdd(lower, lower, acc0);
                acc1 = Vector512.FusedMultiplyAdd(upper, upper, acc1);
            }
        }
        double total = Vector512.Sum(acc0 + acc1);
        Vector256<double> acc2 = Vector256<double>.Zero;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= elementCount; i += 8)
            {
                (Vector256<double> lower, Vector256<double> upper) = Vector256.Widen(Vector256.Load(data + i));
                acc2 = Vector256.FusedMultiplyAdd(lower, lower, Vector256.FusedMultiplyAdd(upper, upper, acc2));
            }
        }
        total += Vector256.Sum(acc2);
        for (; i < elementCount; i++)
            total = Math.FusedMultiplyAdd(data[i], data[i], total);
        return total;
    }

    internal static double SumOfSquaresBFloat16(ushort* data, long elementCount)
    {
        long i = 0;
        Vector512<double> acc0 = Vector512<double>.Zero, acc1 = Vector512<double>.Zero;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= elementCount; i += 16)
            {
                Vector512<float> values = (Vector512.WidenLower(Vector256.Load(data + i).ToVector512()) << 16).AsSingle();
                (Vector512<double> lower, Vector512<double> upper) = Vector512.Widen(values);
                acc0 = Vector512.FusedMultiplyAdd(lower, lower, acc0);
                acc1 = Vector512.FusedMultiplyAdd(upper, upper, acc1);
            }
        }
        double total = Vector512.Sum(acc0 + acc1);
        // the same 8-wide step as the fp32 pass, so bf16 gradients and their exact fp32 copies give the same sum
        Vector256<double> acc2 = Vector256<double>.Zero;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= elementCount; i += 8)
            {
                Vector256<float> values = (Vector256.WidenLower(Vector128.Load(data + i).ToVector256()) << 16).AsSingle();
                (Vector256<double> lower, Vector256<double> upper) = Vector256.Widen(values);
                acc2 = Vector256.FusedMultiplyAdd(lower, lower, Vector256.FusedMultiplyAdd(upper, upper, acc2));
            }
        }
        total += Vector256.Sum(acc2);
        for (; i < elementCount; i++)
        {
            double value = LowPrecision.FromBFloat16(data[i]);
            total = Math.FusedMultiplyAdd(value, value, total);
        }
        return total;
    }

    /// <summary>The sum of squares of one chunk, fp32 or bf16 (the pass <see cref="SumOfSquares"/> runs per chunk).</summary>
    internal static double SumOfSquaresChunk(nint pointer, ElementType type, long elementCount) => type == ElementType.Float32
        ? SumOfSquaresFloat32((float*)pointer, elementCount)
        : SumOfSquaresBFloat16((ushort*)pointer, elementCount);
}
