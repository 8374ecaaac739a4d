using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models;
using Xunit;

namespace FineTune.Trainer.Tests.Models;

/// <summary>Export to an HF folder and reload: tensors, bytes, sharding, config and tokenizer files; dtype conversion on load.</summary>
public sealed class LlamaExportTests
{
    [Theory]
    [InlineData(ModelFixtures.GqaTied)]
    [InlineData(ModelFixtures.BiasLlama3)]
    [InlineData(ModelFixtures.Qwen2)]
    public void ExportOfALoadedFolderReproducesEveryTensorsBytes(string fixture)
    {
        string source = ModelFixtures.Folder(fixture);
        using var scratch = new ScratchFolder();
        string exported = Path.Combine(scratch.Path, "out");
        using (TensorScope.Enter())
        using (var model = LlamaModel.Load(source, DType.Float32, Device.Cpu))
            LlamaExporter.Export(model, exported, tokenizerSourceFolder: source);

        using SafetensorsFile original = SafetensorsFile.Open(Path.Combine(source, "model.safetensors"));
        using SafetensorsFile written = SafetensorsFile.Open(Path.Combine(exported, "model.safetensors"));
        Assert.Equal(original.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), written.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Equal("pt", written.Metadata["format"]);
        foreach (SafetensorsTensorInfo info in original.Tensors)
        {
            SafetensorsTensorInfo other = written.GetTensor(info.Name);
            Assert.Equal(info.DType, other.DType);
            Assert.Equal(info.Shape, other.Shape);
            Assert.Equal(Bytes(original, info), Bytes(written, other));
        }
        // The writer lays tensors out as the reference does, as the Python fixture writer did: identical files.
        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "model.safetensors")), File.ReadAllBytes(Path.Combine(exported, "model.safetensors")));
        Assert.Equal(LlamaConfigReader.ReadFolder(source), LlamaConfigReader.ReadFolder(exported));
    }

    [Fact]
    public void LoadExportShardedReloadGivesIdenticalTensors()
    {
        string source = ModelFixtures.Folder(ModelFixtures.BiasLlama3);
        using var scratch = new ScratchFolder();
        string exported = Path.Combine(scratch.Path, "sharded");
        File.WriteAllText(Path.Combine(scratch.Path, "tokenizer.json"), "{\"version\":\"1.0\"}");
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(source, DType.Float32, Device.Cpu);
        LlamaExporter.Export(model, exported, maxShardByteCount: 40_000, tokenizerSourceFolder: scratch.Path);

        SafetensorsIndex index = SafetensorsIndex.Read(Path.Combine(exported, SafetensorsIndex.FileName));
        Assert.True(index.ShardFileNames.Count > 1, "expected several shards");
        Assert.Equal(model.Parameters.Sum(p => p.Spec.ElementCount * 4), index.TotalByteCount);
        Assert.Equal("{\"version\":\"1.0\"}", File.ReadAllText(Path.Combine(exported, "tokenizer.json")));
        Assert.False(File.Exists(Path.Combine(exported, "model.safetensors")));

        using var reloaded = LlamaModel.Load(exported, DType.Float32, Device.Cpu);
        Assert.Equal(model.Parameters.Select(p => p.Name), reloaded.Parameters.Select(p => p.Name));
        foreach (var (a, b) in model.Parameters.Zip(reloaded.Parameters))
            Assert.True(a.Tensor.ValueEquals(b.Tensor), a.Name);
    }

    [Fact]
    public void CreatedModelExportsAFullConfigAndReloads()
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(ModelFixtures.Folder(ModelFixtures.BiasLlama3)) with { Source = null };
        using var scratch = new ScratchFolder();
        string exported = Path.Combine(scratch.Path, "fresh");
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Create(config, seed: 7, DType.Float32, Device.Cpu);
        LlamaExporter.Export(model, exported, dtype: DType.BFloat16);

        Assert.Equal(config with { TorchDType = "bfloat16" }, LlamaConfigReader.ReadFolder(exported));
        using var reloaded = LlamaModel.Load(exported, DType.BFloat16, Device.Cpu);
        foreach (var (a, b) in model.Parameters.Zip(reloaded.Parameters))
        {
            using Tensor converted = a.Tensor.To(DType.BFloat16);
            Assert.True(converted.ValueEquals(b.Tensor), a.Name);
        }
    }

    [Theory]
    [InlineData(ModelFixtures.GqaTiedBf16, DType.BFloat16)]
    [InlineData(ModelFixtures.GqaTiedF16, DType.Float16)]
    public void LowPrecisionOnDiskLoadsAsTorchWouldConvert(string lowPrecisionFixture, DType dtype)
    {
        // The Python script wrote the bf16/f16 copies with torch's .to(dtype) of the f32 weights; loading the f32
        // folder as that dtype must give the same bits, and loading the copy as f32 must widen exactly.
        using var scope = TensorScope.Enter();
        using var fromF32 = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), dtype, Device.Cpu);
        using var onDisk = LlamaModel.Load(ModelFixtures.Folder(lowPrecisionFixture), dtype, Device.Cpu);
        using var widened = LlamaModel.Load(ModelFixtures.Folder(lowPrecisionFixture), DType.Float32, Device.Cpu);
        foreach (var ((a, b), c) in fromF32.Parameters.Zip(onDisk.Parameters).Zip(widened.Parameters))
        {
            Assert.Equal(dtype, b.Tensor.DType);
            Assert.True(a.Tensor.ValueEquals(b.Tensor), a.Name);
            using Tensor narrowedAgain = c.Tensor.To(dtype);
            Assert.Equal(DType.Float32, c.Tensor.DType);
            Assert.True(narrowedAgain.ValueEquals(b.Tensor), a.Name);
        }
    }

    [Fact]
    public void ExportRefusesAFolderThatAlreadyHoldsAModel()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(scratch.Path, DType.Float32, Device.Cpu);
        var error = Assert.Throws<UserErrorException>(() => LlamaExporter.Export(model, scratch.Path));
        Assert.Contains(scratch.Path, error.Message);
    }

    private static byte[] Bytes(SafetensorsFile file, SafetensorsTensorInfo info)
    {
        var bytes = new byte[info.ByteCount];
        file.ReadTensorBytes(info.Name, bytes);
        return bytes;
    }
}
