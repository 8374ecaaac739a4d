using FineTune.Offload.Memory;
using System.Globalization;
using FineTune.IO;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// <see cref="BaseWeights.Generated"/>: <see cref="LlamaInitializer.Generate"/> draws each tensor in row chunks
/// (float32 on the CPU, rounded to the store's dtype: LlamaModel.Create's values) and each goes straight into the
/// store, so the host holds one chunk and its draw at a time. The fingerprint is one pseudo-file, the CRC-32C of the weights as stored (layout order), so a
/// resume that regenerates the base checks that this libtorch draws the same numbers.
/// </summary>
internal sealed class GeneratedBaseWeights(long seed) : BaseWeights
{
    private const long StagingByteCount = 8L << 20;

    internal override BaseFingerprint? FillInto(ParameterStore store, LlamaModel model)
    {
        using var staging = new AlignedBuffer(StagingByteCount);
        uint crc = 0;
        long byteCount = 0;
        // chunks come in layout order (parameters in the stable order, rows in order): the CRC is the whole base's
        foreach (var (parameter, offset, values) in LlamaInitializer.Generate(model.Config, seed, model.DType, Device.Cpu))
        {
            using (values)
            {
                store.Fill(parameter, offset, values);
                (crc, byteCount) = Append(crc, byteCount, values, staging);
            }
        }
        store.CompleteFill();
        return new BaseFingerprint
        {
            Source = string.Create(CultureInfo.InvariantCulture, $"random init of model.config, seed {seed}"),
            IsFolder = false,
            Files = [new BaseFileHash($"weights ({model.DType.Name()}, layout order)", byteCount, crc)],
        };
    }

    /// <summary>The CRC continued over <paramref name="tensor"/>'s bytes (contiguous, its dtype), copied through <paramref name="staging"/>.</summary>
    private static (uint Crc, long ByteCount) Append(uint crc, long byteCount, Tensor tensor, AlignedBuffer staging)
    {
        using var scope = TensorScope.Enter();
        Tensor flat = tensor.Detach().Contiguous().Reshape(-1);
        int elementBytes = tensor.DType.ElementByteCount();
        long chunk = StagingByteCount / elementBytes;
        for (long done = 0; done < flat.NumElements; done += chunk)
        {
            long take = Math.Min(chunk, flat.NumElements - done);
            staging.AsTensor([take], tensor.DType).CopyFrom(flat.Narrow(0, done, take));
            crc = Crc32C.Append(crc, staging.GetSpan(0, checked((int)(take * elementBytes))));
        }
        return (crc, byteCount + flat.NumElements * elementBytes);
    }
}
