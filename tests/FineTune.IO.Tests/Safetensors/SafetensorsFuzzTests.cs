using FineTune.IO.Safetensors;
using Xunit;

namespace FineTune.IO.Tests.Safetensors;

/// <summary>
/// Seeded mutations of valid files (byte flips, truncation, extension, random header lengths, spliced JSON) must
/// either open with a self-consistent layout or fail with <see cref="SafetensorsFormatException"/>: no other
/// exception, no hang, and allocation bounded by a small multiple of the file's size.
/// </summary>
public sealed class SafetensorsFuzzTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static byte[] ValidFile(Random random)
    {
        var writer = new SafetensorsWriter();
        int tensorCount = random.Next(0, 5);
        for (int index = 0; index < tensorCount; index++)
        {
            var dtype = (SafetensorsDType)random.Next(0, 15);
            long[] shape = Enumerable.Range(0, random.Next(0, 3)).Select(_ => (long)random.Next(0, 4)).ToArray();
            long byteCount = SafetensorsDTypes.TryComputeByteCount(dtype, shape)!.Value;
            byte[] data = new byte[byteCount];
            random.NextBytes(data);
            writer.Add($"t{index}", dtype, shape, data);
        }
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }

    private static byte[] Mutate(byte[] valid, Random random)
    {
        byte[] bytes = (byte[])valid.Clone();
        switch (random.Next(6))
        {
            case 0:
                for (int flips = random.Next(1, 4); flips > 0; flips--)
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                return bytes;
            case 1:
                return bytes[..random.Next(bytes.Length)];
            case 2:
                return bytes.Concat(new byte[random.Next(1, 16)]).ToArray();
            case 3:
                BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), random.NextInt64());
                return bytes;
            case 4:
                int at = random.Next(8, bytes.Length);
                bytes[at] = (byte)"{}[],:\"0-9e. \\"[random.Next(14)];
                return bytes;
            default:
                byte[] noise = new byte[random.Next(8, 200)];
                random.NextBytes(noise);
                BitConverter.TryWriteBytes(noise.AsSpan(0, 8), (long)random.Next(0, noise.Length));
                noise[8] = (byte)'{';
                return noise;
        }
    }

    [Fact]
    public void MutatedFilesNeverCrashHangOrOverAllocate()
    {
        string path = _directory.File("fuzz.safetensors");
        int accepted = 0, rejected = 0;
        for (int seed = 0; seed < 1500; seed++)
        {
            var random = new Random(seed);
            byte[] bytes = Mutate(ValidFile(random), random);
            File.WriteAllBytes(path, bytes);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                using SafetensorsFile file = SafetensorsFile.Open(path);
                accepted++;
                long covered = file.Tensors.Sum(tensor => tensor.ByteCount);
                Assert.Equal(bytes.Length, file.DataStartFileOffset + covered);
                foreach (SafetensorsTensorInfo tensor in file.Tensors)
                {
                    byte[] data = new byte[tensor.ByteCount];
                    file.ReadTensorBytes(tensor.Name, data);
                    Assert.Equal(bytes.AsSpan((int)tensor.FileOffset, data.Length).ToArray(), data);
                }
            }
            catch (SafetensorsFormatException error)
            {
                rejected++;
                Assert.Contains(path, error.Message);
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 256 * 1024 + 64L * bytes.Length, $"seed {seed}: allocated {allocated} bytes for {bytes.Length}");
        }
        Assert.True(rejected > 500, $"only {rejected} mutations were rejected");
        Assert.True(accepted > 10, $"only {accepted} mutations were accepted");
    }
}
