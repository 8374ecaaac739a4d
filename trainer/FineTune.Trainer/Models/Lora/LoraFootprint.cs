using System.Globalization;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// What LoRA trains and holds for a model shape, from the config alone (no weights): adapter parameters per
/// projection, the base parameters trained in full, the resident training state of both (float32 weight, float32
/// gradient, Adam m and v: 16 bytes a parameter), and the base's read traffic when it is streamed. The base itself
/// gets no gradient, master copy or optimizer state and is never written. For `finetune plan` and the run plan.
/// </summary>
public sealed record LoraFootprint
{
    /// <summary>float32 weight + float32 gradient + Adam m + Adam v.</summary>
    public const int StateBytesPerTrainedParameter = 16;

    public required LoraConfig Lora { get; init; }

    public required int LayerCount { get; init; }

    /// <summary>Adapter parameters (A and B) per target projection, summed over layers, in canonical order.</summary>
    public required IReadOnlyList<(string Module, long ParameterCount)> PerModule { get; init; }

    public required long BaseParameterCount { get; init; }

    /// <summary>Parameters of the base trained in full (model.lora.trainable).</summary>
    public required long TrainableBaseParameterCount { get; init; }

    public long AdapterParameterCount => PerModule.Sum(m => m.ParameterCount);

    public long TrainedParameterCount => AdapterParameterCount + TrainableBaseParameterCount;

    /// <summary>
    /// The least training state that stays resident, as PEFT counts it: float32 weights, gradients and Adam moments of
    /// the trained parameters. The LoRA engine's own figure, with its fp32 master copies and the extras in the
    /// base's dtype, is its plan's (Training.Adapters.AdapterPlan).
    /// </summary>
    public long ResidentStateByteCount => TrainedParameterCount * StateBytesPerTrainedParameter;

    public static LoraFootprint Of(LlamaConfig config, LoraConfig lora)
    {
        lora.Validate();
        var specs = LlamaTensorNames.All(config).ToDictionary(s => s.Name, StringComparer.Ordinal);
        return new LoraFootprint
        {
            Lora = lora,
            LayerCount = config.LayerCount,
            PerModule = lora.Targets.Select(module =>
            {
                var (inFeatures, outFeatures) = LoraTargets.Features(config, module);
                return (module, config.LayerCount * (long)lora.Rank * (inFeatures + outFeatures));
            }).ToArray(),
            BaseParameterCount = specs.Values.Sum(s => s.ElementCount),
            TrainableBaseParameterCount = LoraTrainableModules.ParameterNames(config, lora.Trainable).Sum(name => specs[name].ElementCount),
        };
    }

    /// <summary>
    /// Bytes of base weights read per optimizer step when the base streams from NVMe: every stage once forward and
    /// once for the recompute in backward, per micro-batch.
    /// </summary>
    public long StreamedBaseReadBytesPerStep(int baseElementByteCount, int microBatchesPerStep) =>
        2L * BaseParameterCount * baseElementByteCount * microBatchesPerStep;

    /// <summary>The lines `finetune plan` prints for the adapters (the engine's tiers and bytes follow from its plan).</summary>
    public IEnumerable<string> Lines()
    {
        LoraConfig c = Lora;
        string trainable = c.Trainable.Count == 0 ? "none" : string.Join(", ", c.Trainable);
        yield return F($"lora: rank {c.Rank}, alpha {c.Alpha:G6} (scale {c.Scale:G6}), dropout {c.Dropout:G6}, on {string.Join(", ", c.Targets)} of {LayerCount} layers; trained in full: {trainable}");
        yield return F($"  adapter parameters {AdapterParameterCount,14:N0}  ({100.0 * AdapterParameterCount / BaseParameterCount:0.###}% of the {BaseParameterCount:N0}-parameter base): {string.Join(", ", PerModule.Select(m => F($"{m.Module} {m.ParameterCount:N0}")))}");
        yield return F($"  trainable extras   {TrainableBaseParameterCount,14:N0}");
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
