using FineTune.Offload.Memory;
using FineTune.IO;
using FineTune.IO.Safetensors;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// <see cref="BaseWeights.FromFolder"/>: reads each tensor's bytes from the folder's safetensors files (opened and
/// checked against the config as <see cref="LlamaModel.Open"/> does) in 64 MiB chunks into one reused buffer, gives
/// the store a view of them in the file's dtype (the store converts), and CRCs them on the way
/// (<see cref="FileHashes"/>): the base is read once, and each file's CRC-32C comes out of it. The buffer grows to
/// the largest tensor's bytes on disk, as loading that tensor would take anyway.
/// </summary>
internal sealed class FolderBaseWeights(string folder) : BaseWeights
{
    private const int ChunkByteCount = 64 << 20;

    internal override BaseFingerprint? FillInto(ParameterStore store, LlamaModel model)
    {
        var files = new List<SafetensorsFile>();
        AlignedBuffer? buffer = null;
        try
        {
            Dictionary<string, SafetensorsFile> byTensor = LlamaCheckpointReader.OpenChecked(folder, model.Config, files);
            var hashes = new FileHashes(folder);
            for (int i = 0; i < model.Parameters.Count; i++)
            {
                NamedParameter parameter = model.Parameters[i];
                SafetensorsFile file = byTensor[parameter.Name];
                SafetensorsTensorInfo info = file.GetTensor(parameter.Name);
                if (buffer is null || buffer.ByteCount < info.ByteCount)
                {
                    buffer?.Dispose();
                    buffer = new AlignedBuffer(info.ByteCount);
                }
                uint crc = 0;
                for (long done = 0; done < info.ByteCount; done += ChunkByteCount)
                {
                    Span<byte> chunk = buffer.GetSpan(done, (int)Math.Min(ChunkByteCount, info.ByteCount - done));
                    file.ReadTensorBytes(parameter.Name, done, chunk);
                    crc = Crc32C.Append(crc, chunk);
                }
                hashes.Add(file, info.FileOffset, info.ByteCount, crc);
                using var scope = TensorScope.Enter();
                DType diskType = CheckpointDTypes.ToTorch(info.DType)!.Value; // OpenChecked refused the others
                store.Fill(i, 0, buffer.AsTensor(parameter.Spec.Shape, diskType));
            }
            store.CompleteFill();
            return new BaseFingerprint { Source = Path.GetFullPath(folder), IsFolder = true, Files = hashes.Finish(files) };
        }
        finally
        {
            buffer?.Dispose();
            foreach (SafetensorsFile file in files)
                file.Dispose();
        }
    }
}
