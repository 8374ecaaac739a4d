using FineTune.Torch;
using FineTune.Trainer.Models;
using Xunit;

namespace FineTune.Trainer.Tests.Models;

/// <summary>What the model refuses at run time: windows it does not implement, positions past its range, wrong shapes.</summary>
public sealed class LlamaModelGuardTests
{
    private static readonly LlamaConfig s_mistral = new()
    {
        ModelType = "mistral", VocabSize = 32, HiddenSize = 16, IntermediateSize = 24, LayerCount = 1, HeadCount = 2,
        KvHeadCount = 1, HeadDim = 8, SlidingWindow = 4, MaxPositionEmbeddings = 16,
    };

    [Fact]
    public void SlidingWindowShorterThanTheSequenceIsRefused()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Create(s_mistral, seed: 1, DType.Float32, Device.Cpu);
        Assert.Equal([1L, 4, 32], model.Forward(FineTune.Torch.Torch.Zeros([1, 4], DType.Int64)).Shape);
        string message = Assert.Throws<UserErrorException>(() => model.Forward(FineTune.Torch.Torch.Zeros([1, 5], DType.Int64))).Message;
        Assert.Contains("sliding_window (4)", message);
    }

    [Fact]
    public void SequencesPastMaxPositionEmbeddingsAreRefused()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Create(s_mistral with { SlidingWindow = null }, seed: 1, DType.Float32, Device.Cpu);
        Assert.Contains("max_position_embeddings (16)",
            Assert.Throws<UserErrorException>(() => model.Forward(FineTune.Torch.Torch.Zeros([1, 17], DType.Int64))).Message);
        Assert.Throws<ArgumentException>(() => model.Forward(FineTune.Torch.Torch.Zeros([1, 4], DType.Float32)));
    }

    [Fact]
    public void ParametersOnlyAcceptTheirShape()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Create(s_mistral, seed: 1, DType.Float32, Device.Cpu);
        NamedParameter norm = model.FinalNorm.Weight;
        Assert.Throws<ArgumentException>(() => norm.Tensor = scope.Detach(FineTune.Torch.Torch.Ones([17])));
        norm.Tensor = scope.Detach(FineTune.Torch.Torch.Full([16], 2.0));
        Assert.All(model.FinalNorm.Weight.Tensor.ToArray<float>(), v => Assert.Equal(2f, v));
        Assert.Same(model.Parameters.Single(p => p.Name == LlamaTensorNames.FinalNorm), norm);
    }
}
