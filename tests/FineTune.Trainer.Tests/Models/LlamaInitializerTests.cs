using FineTune.Torch;
using FineTune.Trainer.Models;
using Xunit;

namespace FineTune.Trainer.Tests.Models;

/// <summary>Seeded from-scratch initialisation: reproducible, HF's distributions, pad row zeroed, and a usable model.</summary>
public sealed class LlamaInitializerTests
{
    private static readonly LlamaConfig s_config = new()
    {
        ModelType = "llama", VocabSize = 256, HiddenSize = 64, IntermediateSize = 96, LayerCount = 2, HeadCount = 4,
        KvHeadCount = 1, HeadDim = 16, AttentionBias = true, OutputProjectionBias = true, PadTokenId = 0, InitializerRange = 0.05,
    };

    [Fact]
    public void SameSeedSameWeightsOtherSeedOtherWeights()
    {
        using var scope = TensorScope.Enter();
        using var a = LlamaModel.Create(s_config, seed: 11, DType.Float32, Device.Cpu);
        using var b = LlamaModel.Create(s_config, seed: 11, DType.Float32, Device.Cpu);
        using var c = LlamaModel.Create(s_config, seed: 12, DType.Float32, Device.Cpu);
        foreach (var ((pa, pb), pc) in a.Parameters.Zip(b.Parameters).Zip(c.Parameters))
        {
            Assert.True(pa.Tensor.ValueEquals(pb.Tensor), pa.Name);
            bool random = !pa.Name.EndsWith("norm.weight") && !pa.Name.EndsWith(".bias");
            Assert.Equal(random, !pa.Tensor.ValueEquals(pc.Tensor));
        }
    }

    [Fact]
    public void DistributionsFollowTransformersInitWeights()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Create(s_config, seed: 3, DType.Float32, Device.Cpu);
        Assert.Equal(LlamaTensorNames.All(s_config).Select(s => s.Name), model.Parameters.Select(p => p.Name));
        foreach (NamedParameter p in model.Parameters)
        {
            float[] values = p.Tensor.ToArray<float>();
            if (p.Name.EndsWith("norm.weight"))
                Assert.All(values, v => Assert.Equal(1f, v));
            else if (p.Name.EndsWith(".bias"))
                Assert.All(values, v => Assert.Equal(0f, v));
            else
            {
                // normal(0, 0.05) over n samples: the sample std is within 4 standard errors (sigma / sqrt(2n)) and
                // the mean within 4 sigma / sqrt(n).
                var sample = p.Name == LlamaTensorNames.Embedding ? values[s_config.HiddenSize..] : values;
                double mean = sample.Average(v => (double)v);
                double std = Math.Sqrt(sample.Average(v => (v - mean) * (v - mean)));
                double stdError = 4 * 0.05 / Math.Sqrt(2.0 * sample.Length);
                Assert.InRange(std, 0.05 - stdError, 0.05 + stdError);
                Assert.InRange(mean, -4 * 0.05 / Math.Sqrt(sample.Length), 4 * 0.05 / Math.Sqrt(sample.Length));
            }
        }
        float[] padRow = model.Embedding.Weight.Tensor.Narrow(0, 0, 1).ToArray<float>();
        Assert.All(padRow, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void FreshModelStartsNearUniformLoss()
    {
        // With weights ~ N(0, 0.05) the logits are small: RMS-normed h (64 dims) times embedding rows of std 0.05
        // gives logits of std ~0.4, so the expected loss is ln(vocab) + ~0.4^2/2 = ln(256) + 0.08.
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Create(s_config, seed: 5, DType.Float32, Device.Cpu);
        using var generator = new Generator(9);
        Tensor ids = (FineTune.Torch.Torch.Rand([2, 12], generator) * 255).To(DType.Int64);
        double loss = model.Loss(ids, ids).Item<float>();
        Assert.InRange(loss, Math.Log(256) - 0.05, Math.Log(256) + 0.25);
    }

    [Theory]
    [InlineData(16)]     // one row of 64 per chunk would be < 16 elements... rows come in multiples of 16
    [InlineData(2000)]   // 16 rows of 64 per chunk: the pad row and uneven tails fall in later chunks
    [InlineData(100000)] // chunks of 1,552 rows: the 256-row embedding whole, the MLP weights whole
    public void ChunkedDrawsEqualTheWholeTensorDraw(long chunkElementCount)
    {
        // a model larger than host memory is created chunk by chunk: the values must be those of the whole-tensor draw
        LlamaConfig config = s_config with { VocabSize = 250, PadTokenId = 37 };
        using var scope = TensorScope.Enter();
        Dictionary<string, Tensor> whole = LlamaInitializer.Initialize(config, seed: 5, DType.Float32, Device.Cpu);
        IReadOnlyList<ParameterSpec> specs = LlamaTensorNames.All(config);
        var drawn = specs.ToDictionary(s => s.Name, s => new float[s.ElementCount]);
        int chunks = 0;
        foreach (var (parameter, offset, values) in LlamaInitializer.Generate(config, seed: 5, DType.Float32, Device.Cpu, chunkElementCount))
        {
            values.ToArray<float>().CopyTo(drawn[specs[parameter].Name], offset);
            values.Dispose();
            chunks++;
        }
        Assert.True(chunks >= specs.Count);
        if (chunkElementCount <= 2000)
            Assert.True(chunks > specs.Count, "the test must draw some tensor in several chunks");
        foreach (ParameterSpec spec in specs)
            Assert.True(whole[spec.Name].ToArray<float>().SequenceEqual(drawn[spec.Name]), spec.Name);
        Assert.All(drawn[LlamaTensorNames.Embedding].AsSpan(37 * 64, 64).ToArray(), v => Assert.Equal(0f, v));
        foreach (Tensor t in whole.Values)
            t.Dispose();
    }
}
