using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Tests.Models.Lora;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Tests.Training.Adapters;

/// <summary>Helpers for the LoRA engine's tests: the reference fixture's batch, engine options, the trained values read back.</summary>
internal static class AdapterTraining
{
    /// <summary>The fixture's inputs as one batch: ids (B, T) and its HF labels shifted as the engine takes them.</summary>
    public static Batch FixtureBatch(LoraReferenceData reference)
    {
        int b = reference.InputIds.Length, t = reference.InputIds[0].Length;
        long[] ids = reference.InputIds.SelectMany(r => r).ToArray();
        long[] targets = reference.Labels.SelectMany(r => r.Skip(1).Append(CausalLmLoss.IgnoreIndex)).ToArray();
        return new Batch(b, t, ids, targets, new DataPosition(0, 0, 0, 1, 0));
    }

    /// <summary>The reference script's AdamW: lr 1e-2, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, no clipping.</summary>
    public static TrainingOptions ReferenceOptions(int microBatchSize, int sequenceLength) => new()
    {
        MicroBatchSize = microBatchSize,
        SequenceLength = sequenceLength,
        AdamW = new() { LearningRate = 1e-2, Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8, WeightDecay = 0.01 },
        SubGroupElementCount = 4096,
    };

    /// <summary>Every A and B, then every trained extra, as floats (the extras read through the model's weight source).</summary>
    public static List<float[]> TrainedValues(LlamaModel model, LoraAdapters adapters)
    {
        using var scope = TensorScope.Enter();
        var values = adapters.Parameters.Select(p => p.Tensor.ToArray<float>()).ToList();
        foreach (NamedParameter p in model.Parameters.Where(p => adapters.TrainableBaseParameterNames.Contains(p.Name)))
        {
            using StageWeights weights = model.UseWeights(p);
            values.Add(weights[p].To(DType.Float32).Contiguous().ToArray<float>());
        }
        return values;
    }

    /// <summary>Every frozen base weight as floats, read through the model's weight source.</summary>
    public static List<float[]> FrozenValues(LlamaModel model, LoraAdapters adapters)
    {
        using var scope = TensorScope.Enter();
        return model.Parameters.Where(p => !adapters.TrainableBaseParameterNames.Contains(p.Name)).Select(p =>
        {
            using StageWeights weights = model.UseWeights(p);
            return weights[p].To(DType.Float32).Contiguous().ToArray<float>();
        }).ToList();
    }
}
