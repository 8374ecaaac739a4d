using Xunit;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Tests.Models;

/// <summary>config.json parsing: the fixtures, transformers' defaults per model_type, both RoPE spellings, refusals.</summary>
public sealed class LlamaConfigTests
{
    [Fact]
    public void ReadsTheGqaTiedFixture()
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(ModelFixtures.Folder(ModelFixtures.GqaTied));
        Assert.Equal("llama", config.ModelType);
        Assert.Equal((128, 32, 64, 2, 4, 2, 8), (config.VocabSize, config.HiddenSize, config.IntermediateSize,
            config.LayerCount, config.HeadCount, config.KvHeadCount, config.HeadDim));
        Assert.Equal(2, config.KvGroupCount);
        Assert.True(config.TieWordEmbeddings);
        Assert.False(config.AttentionBias);
        Assert.Equal(1e-5, config.RmsNormEps);
        Assert.Equal(RopeScalingKind.Default, config.RopeScaling.Kind);
        Assert.Equal([2], config.EosTokenIds);
        Assert.Equal("float32", config.TorchDType);
    }

    [Fact]
    public void ReadsTheBiasLlama3Fixture()
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(ModelFixtures.Folder(ModelFixtures.BiasLlama3));
        Assert.Equal(16, config.HeadDim);
        Assert.Equal(64, config.QueryWidth);
        Assert.Equal(32, config.KeyValueWidth);
        Assert.True(config.AttentionBias);
        Assert.True(config.OutputProjectionBias);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal(new RopeScaling
        {
            Kind = RopeScalingKind.Llama3, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 64,
        }, config.RopeScaling);
        Assert.Equal([2, 3], config.EosTokenIds);
    }

    [Fact]
    public void LlamaDefaultsFollowTransformers()
    {
        LlamaConfig config = Parse("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""");
        Assert.Equal(2, config.KvHeadCount);
        Assert.Equal(4, config.HeadDim);
        Assert.Equal(1e-6, config.RmsNormEps);
        Assert.Equal(10000.0, config.RopeTheta);
        Assert.Equal(2048, config.MaxPositionEmbeddings);
        Assert.Equal(0.02, config.InitializerRange);
        Assert.False(config.TieWordEmbeddings);
        Assert.False(config.AttentionBias || config.MlpBias || config.OutputProjectionBias);
        Assert.Null(config.SlidingWindow);
        Assert.Equal(1, config.BosTokenId);
        Assert.Equal([2], config.EosTokenIds);
    }

    [Fact]
    public void MistralAndQwen2DefaultsFollowTheirConfigClasses()
    {
        const string shape = "\"vocab_size\":10,\"hidden_size\":32,\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":8";
        LlamaConfig mistral = Parse("{\"model_type\":\"mistral\"," + shape + "}");
        Assert.Equal(8, mistral.KvHeadCount);
        Assert.Equal(4096, mistral.SlidingWindow);
        Assert.Equal(4096 * 32, mistral.MaxPositionEmbeddings);
        Assert.Null(Parse("{\"model_type\":\"mistral\",\"sliding_window\":null," + shape + "}").SlidingWindow);

        LlamaConfig qwen = Parse("{\"model_type\":\"qwen2\",\"num_key_value_heads\":2," + shape + "}");
        Assert.True(qwen.AttentionBias);
        Assert.False(qwen.OutputProjectionBias);
        Assert.Null(qwen.SlidingWindow);
        Assert.Equal(32768, qwen.MaxPositionEmbeddings);
        Assert.Null(qwen.BosTokenId);
        Assert.Equal(4096, Parse("{\"model_type\":\"qwen2\",\"use_sliding_window\":true," + shape + "}").SlidingWindow);
    }

    [Fact]
    public void RopeParametersAndRopeScalingSpellingsAgree()
    {
        const string shape = "\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2";
        LlamaConfig classic = Parse("{" + shape + ",\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":32.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}");
        LlamaConfig modern = Parse("{" + shape + ",\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":32.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}");
        LlamaConfig legacy = Parse("{" + shape + ",\"rope_theta\":500000.0,\"rope_scaling\":{\"type\":\"llama3\",\"factor\":32.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}");
        Assert.Equal(500000.0, modern.RopeTheta);
        Assert.Equal(classic.RopeScaling, modern.RopeScaling);
        Assert.Equal(classic.RopeScaling, legacy.RopeScaling);
        Assert.Equal(RopeScalingKind.Default, Parse("{" + shape + ",\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":7.0}}").RopeScaling.Kind);
    }

    // Expected values printed by tests/reference/make_llama_fixtures.py's rope_inv_freq (torch float32).
    [Fact]
    public void InverseFrequenciesMatchTransformers()
    {
        float[] plain = RopeScaling.None.InverseFrequencies(16, 10000.0);
        AssertClose([1.0f, 0.3162277638912201f, 0.10000000149011612f, 0.03162277862429619f, 0.009999999776482582f,
            0.003162277862429619f, 0.0010000000474974513f, 0.0003162277862429619f], plain);

        var llama3 = new RopeScaling { Kind = RopeScalingKind.Llama3, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 64 };
        AssertClose([1.0f, 0.24438458681106567f, 0.013042256236076355f, 0.0039528473280370235f, 0.0012499999720603228f,
            0.00039528473280370235f, 0.0001250000059371814f, 3.9528473280370235e-05f], llama3.InverseFrequencies(16, 10000.0));

        var linear = new RopeScaling { Kind = RopeScalingKind.Linear, Factor = 4 };
        AssertClose([0.25f, 0.009401507675647736f, 0.0003535533614922315f, 1.3295739336172119e-05f], linear.InverseFrequencies(8, 500000.0));

        static void AssertClose(float[] expected, float[] actual)
        {
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 2e-7 * Math.Abs(expected[i]), $"inv_freq[{i}]: {actual[i]} vs {expected[i]}");
        }
    }

    [Theory]
    [InlineData("""{"model_type":"llama","hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""", "vocab_size")]
    [InlineData("""{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""", "model_type")]
    [InlineData("""{"model_type":"gpt2","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""", "model_type \"gpt2\"")]
    [InlineData("""{"model_type":"llama","architectures":["LlamaForSequenceClassification"],"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""", "architectures")]
    [InlineData("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"yarn","factor":4.0}}""", "rope_scaling.rope_type \"yarn\"")]
    [InlineData("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"llama3","factor":8.0}}""", "rope_scaling.low_freq_factor")]
    [InlineData("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":3}""", "num_key_value_heads")]
    [InlineData("""{"model_type":"llama","vocab_size":"ten","hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""", "vocab_size must be an integer")]
    [InlineData("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"hidden_act":"gelu"}""", "hidden_act")]
    [InlineData("""{"model_type":"llama","vocab_size":10,"hidden_size":9,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}""", "head_dim")]
    [InlineData("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"partial_rotary_factor":0.5}""", "partial_rotary_factor")]
    [InlineData("""{"model_type":"llama",""", "not valid JSON")]
    [InlineData("""[1, 2]""", "JSON object")]
    public void RefusesBadConfigsNamingTheFileAndField(string json, string expectedFragment)
    {
        var error = Assert.Throws<UserErrorException>(() => LlamaConfigReader.Parse(json, "/models/x/config.json"));
        Assert.StartsWith("/models/x/config.json: ", error.Message);
        Assert.Contains(expectedFragment, error.Message);
    }

    [Fact]
    public void MissingConfigFileNamesThePath()
    {
        using var scratch = new ScratchFolder();
        var error = Assert.Throws<UserErrorException>(() => LlamaConfigReader.ReadFolder(scratch.Path));
        Assert.Contains(Path.Combine(scratch.Path, "config.json"), error.Message);
    }

    private static LlamaConfig Parse(string json) => LlamaConfigReader.Parse(json, "config.json");
}
