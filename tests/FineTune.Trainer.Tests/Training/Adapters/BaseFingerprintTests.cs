using FineTune.IO;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Tests.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;
using Xunit;

namespace FineTune.Trainer.Tests.Training.Adapters;

/// <summary>
/// The LoRA base's record: the CRC-32C of each file, assembled from the tensors the engine read in the model's order,
/// is the CRC of the whole file read front to back (on a three-shard base, header and index included; the combine it
/// rests on is Crc32C.Combine, tested in the IO tests); and the one-sentence differences a resume reports.
/// </summary>
public sealed class BaseFingerprintTests
{
    [Fact]
    public void FileCrcsAssembledWhileStreamingEqualTheWholeFilesCrcs()
    {
        string folder = ModelFixtures.Folder(ModelFixtures.BiasLlama3Sharded);
        using var scope = TensorScope.Enter();
        using LlamaModel model = LlamaModel.Open(folder, DType.BFloat16, Device.Cpu);
        using LoraAdapters adapters = LoraAdapters.Create(model, new LoraConfig { Rank = 2 }, seed: 1);
        using var engine = new AdapterEngine(model, adapters, TinyTraining.Options() with { Precision = PrecisionMode.BFloat16 }, BaseWeights.FromFolder(folder));
        BaseFingerprint streamed = engine.BaseFingerprint!;
        Assert.True(streamed.IsFolder);
        Assert.Equal(Path.GetFullPath(folder), streamed.Source);
        string[] names = Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.Equal(names, streamed.Files.Select(f => f.Name));
        Assert.Equal(5, names.Length); // config, index, three shards
        foreach (BaseFileHash file in streamed.Files)
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(folder, file.Name));
            Assert.Equal(bytes.Length, file.ByteCount);
            Assert.True(Crc32C.Compute(bytes) == file.Crc32C, $"{file.Name}: {file.Crc32C:x8} assembled, {Crc32C.Compute(bytes):x8} whole");
        }
        Assert.Null(BaseFingerprint.OfFolderFiles(folder, names).DifferenceFrom(streamed));
    }

    [Fact]
    public void DifferencesNameTheFileAndWhatChanged()
    {
        var recorded = new BaseFingerprint
        {
            Source = "/models/base", IsFolder = true,
            Files = [new BaseFileHash("config.json", 10, 0x11), new BaseFileHash("model.safetensors", 1000, 0xabcdef01)],
        };
        Assert.Null(recorded.DifferenceFrom(recorded));
        Assert.Equal("/models/base/model.safetensors has CRC-32C 00000002, the checkpoint recorded abcdef01; put the base the run started from back at /models/base, or start a new run on this base",
            (recorded with { Files = [recorded.Files[0], new BaseFileHash("model.safetensors", 1000, 2)] }).DifferenceFrom(recorded));
        Assert.StartsWith("/models/base/model.safetensors has 999 bytes, the checkpoint recorded 1,000;",
            (recorded with { Files = [recorded.Files[0], new BaseFileHash("model.safetensors", 999, 2)] }).DifferenceFrom(recorded));
        Assert.Null((recorded with { Files = [recorded.Files[0], new BaseFileHash("model.safetensors", 1000, 2)] }).DifferenceFrom(recorded, sizesOnly: true));
        Assert.StartsWith("/models/base/config.json is missing;", (recorded with { Files = [recorded.Files[1]] }).DifferenceFrom(recorded));
        Assert.StartsWith("extra.safetensors is part of the base now",
            (recorded with { Files = [.. recorded.Files, new BaseFileHash("extra.safetensors", 5, 5)] }).DifferenceFrom(recorded));
        var generated = new BaseFingerprint { Source = "random init of model.config, seed 7", IsFolder = false, Files = [new BaseFileHash("weights (bfloat16, layout order)", 8, 1)] };
        Assert.Contains("resume with the FineTune and libtorch that generated it",
            (generated with { Files = [new BaseFileHash("weights (bfloat16, layout order)", 8, 2)] }).DifferenceFrom(generated));
    }

    [Fact]
    public void RecordRoundTripsThroughItsJsonAndRefusesAForeignFile()
    {
        using var scratch = new ScratchFolder();
        var record = new BaseFingerprint { Source = "/m", IsFolder = true, Files = [new BaseFileHash("a", 3, 0xfffffffe)] };
        string path = Path.Combine(scratch.Path, BaseFingerprint.FileName);
        File.WriteAllText(path, record.ToJson());
        BaseFingerprint read = BaseFingerprint.Read(path);
        Assert.Equal(record.Source, read.Source);
        Assert.Equal(record.Files, read.Files);
        File.WriteAllText(path, "{\"magic\": \"something-else\", \"version\": 1, \"source\": \"x\", \"is_folder\": true, \"files\": []}");
        Assert.Contains("is not a FineTune LoRA base record", Assert.Throws<UserErrorException>(() => BaseFingerprint.Read(path)).Message);
    }
}
