using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using Xunit;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// Adapter parameter counts against the figures PEFT prints (print_trainable_parameters) for published models, and
/// the resident state that follows from them.
/// </summary>
public sealed class LoraFootprintTests
{
    // Llama-2-7B's config.json: vocab 32000, hidden 4096, intermediate 11008, 32 layers, 32 heads (no GQA), untied.
    private static readonly LlamaConfig s_llama2_7b = new()
    {
        ModelType = "llama", VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 11008, LayerCount = 32,
        HeadCount = 32, KvHeadCount = 32, HeadDim = 128,
    };

    // TinyLlama-1.1B: vocab 32000, hidden 2048, intermediate 5632, 22 layers, 32 heads on 4 KV heads, untied.
    private static readonly LlamaConfig s_tinyLlama = new()
    {
        ModelType = "llama", VocabSize = 32000, HiddenSize = 2048, IntermediateSize = 5632, LayerCount = 22,
        HeadCount = 32, KvHeadCount = 4, HeadDim = 64,
    };

    [Fact]
    public void CountsMatchPeftsPublishedFigures()
    {
        // PEFT's README, LoRA r 8 on q_proj, v_proj of Llama-2-7b: "trainable params: 4,194,304 || all params: 6,742,609,920".
        var llama = LoraFootprint.Of(s_llama2_7b, new LoraConfig { Rank = 8, TargetModules = ["q_proj", "v_proj"] });
        Assert.Equal(4_194_304, llama.AdapterParameterCount);
        Assert.Equal(6_742_609_920, llama.BaseParameterCount + llama.AdapterParameterCount);
        Assert.Equal(64L << 20, llama.ResidentStateByteCount); // 16 bytes a trained parameter

        // TinyLlama-1.1B, r 16 on q, k, v, o: "trainable params: 4,505,600 || all params: 1,104,553,984".
        var tiny = LoraFootprint.Of(s_tinyLlama, new LoraConfig { Rank = 16 });
        Assert.Equal(4_505_600, tiny.AdapterParameterCount);
        Assert.Equal(1_104_553_984, tiny.BaseParameterCount + tiny.AdapterParameterCount);
        Assert.Equal([("q_proj", 22L * 16 * 4096), ("k_proj", 22L * 16 * 2304), ("v_proj", 22L * 16 * 2304), ("o_proj", 22L * 16 * 4096)], tiny.PerModule);
    }

    [Fact]
    public void TrainableExtrasAndStreamedReadsAreCounted()
    {
        var footprint = LoraFootprint.Of(s_tinyLlama, new LoraConfig { Rank = 16, Trainable = ["input_layernorm", "post_attention_layernorm", "norm"] });
        Assert.Equal((2 * 22 + 1) * 2048, footprint.TrainableBaseParameterCount);
        Assert.Equal((4_505_600 + 45 * 2048) * 16L, footprint.ResidentStateByteCount);
        // bf16 base, 4 micro-batches: every weight read for the forward and again for the recompute of each.
        Assert.Equal(2L * 1_100_048_384 * 2 * 4, footprint.StreamedBaseReadBytesPerStep(2, 4));
        Assert.Contains(footprint.Lines(), line => line.Contains("adapter parameters      4,505,600", StringComparison.Ordinal));
    }
}
