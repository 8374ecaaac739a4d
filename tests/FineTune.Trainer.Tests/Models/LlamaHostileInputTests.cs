using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models;
using Xunit;

namespace FineTune.Trainer.Tests.Models;

/// <summary>Broken model folders end in a <see cref="UserErrorException"/> naming the file and the problem, loaded or opened.</summary>
public sealed class LlamaHostileInputTests
{
    [Fact]
    public void MissingTensorIsNamed()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        RewriteWeights(scratch.Path, drop: "model.layers.1.mlp.down_proj.weight");
        string message = LoadError(scratch.Path);
        Assert.Contains("model.layers.1.mlp.down_proj.weight", message);
        Assert.Contains("missing", message);
        Assert.Contains(scratch.Path, message);
    }

    [Fact]
    public void WrongShapeIsNamedWithTheFile()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        RewriteWeights(scratch.Path, reshape: ("model.layers.0.self_attn.k_proj.weight", [32, 16]));
        string message = LoadError(scratch.Path);
        Assert.Contains("model.layers.0.self_attn.k_proj.weight has shape [32, 16]", message);
        Assert.Contains(Path.Combine(scratch.Path, "model.safetensors"), message);
    }

    [Fact]
    public void ConfigWithoutRequiredFieldIsRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        EditConfig(scratch.Path, "\"num_hidden_layers\": 2,", "");
        string message = LoadError(scratch.Path);
        Assert.Contains(Path.Combine(scratch.Path, "config.json"), message);
        Assert.Contains("num_hidden_layers", message);
    }

    [Fact]
    public void UnsupportedModelTypeIsRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        EditConfig(scratch.Path, "\"model_type\": \"llama\"", "\"model_type\": \"gemma\"");
        string message = LoadError(scratch.Path);
        Assert.Contains(Path.Combine(scratch.Path, "config.json"), message);
        Assert.Contains("model_type \"gemma\" is not supported", message);
    }

    [Fact]
    public void TruncatedShardIsRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.BiasLlama3Sharded));
        string shard = Path.Combine(scratch.Path, "model-00002-of-00003.safetensors");
        using (var stream = new FileStream(shard, FileMode.Open))
            stream.SetLength(stream.Length - 100);
        string message = LoadError(scratch.Path);
        Assert.Contains(shard, message);
    }

    [Fact]
    public void IndexPointingAtAMissingShardIsRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.BiasLlama3Sharded));
        File.Delete(Path.Combine(scratch.Path, "model-00003-of-00003.safetensors"));
        string message = LoadError(scratch.Path);
        Assert.Contains(Path.Combine(scratch.Path, SafetensorsIndex.FileName), message);
        Assert.Contains("model-00003-of-00003.safetensors", message);
    }

    [Fact]
    public void IndexClaimingATensorItsShardLacksIsRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.BiasLlama3Sharded));
        string index = Path.Combine(scratch.Path, SafetensorsIndex.FileName);
        File.WriteAllText(index, File.ReadAllText(index).Replace(
            "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"", "\"model.norm.weight\": \"model-00001-of-00003.safetensors\""));
        string message = LoadError(scratch.Path);
        Assert.Contains("model.norm.weight", message);
        Assert.Contains("model-00001-of-00003.safetensors", message);
    }

    [Fact]
    public void FolderWithoutWeightsIsRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        File.Delete(Path.Combine(scratch.Path, "model.safetensors"));
        Assert.Contains("model.safetensors", LoadError(scratch.Path));
    }

    [Fact]
    public void NonFloatWeightsAreRefused()
    {
        using var scratch = ScratchFolder.CopyOf(ModelFixtures.Folder(ModelFixtures.GqaTied));
        RewriteWeights(scratch.Path, intNorm: "model.norm.weight");
        string message = LoadError(scratch.Path);
        Assert.Contains("model.norm.weight is I32", message);
    }

    private static string LoadError(string folder)
    {
        using var scope = TensorScope.Enter();
        string message = Assert.ThrowsAny<UserErrorException>(() => LlamaModel.Load(folder, DType.Float32, Device.Cpu).Dispose()).Message;
        // LlamaModel.Open reads no weights, yet refuses the same folders with the same sentence, before any use
        Assert.Equal(message, Assert.ThrowsAny<UserErrorException>(() => LlamaModel.Open(folder, DType.Float32, Device.Cpu).Dispose()).Message);
        return message;
    }

    private static void EditConfig(string folder, string from, string to)
    {
        string path = Path.Combine(folder, "config.json");
        string text = File.ReadAllText(path);
        Assert.Contains(from, text);
        File.WriteAllText(path, text.Replace(from, to));
    }

    /// <summary>Rewrites model.safetensors with one tensor dropped, reshaped (same bytes) or replaced by int32 zeros.</summary>
    private static void RewriteWeights(string folder, string? drop = null, (string Name, long[] Shape)? reshape = null, string? intNorm = null)
    {
        string path = Path.Combine(folder, "model.safetensors");
        var writer = new SafetensorsWriter();
        using (SafetensorsFile file = SafetensorsFile.Open(path))
        {
            foreach (SafetensorsTensorInfo info in file.Tensors)
            {
                if (info.Name == drop)
                    continue;
                var bytes = new byte[info.ByteCount];
                file.ReadTensorBytes(info.Name, bytes);
                IReadOnlyList<long> shape = reshape is { } r && r.Name == info.Name ? r.Shape : info.Shape;
                SafetensorsDType dtype = info.Name == intNorm ? SafetensorsDType.I32 : info.DType;
                writer.Add(info.Name, dtype, shape, bytes);
            }
        }
        File.Delete(path);
        writer.WriteFile(path);
    }
}
