namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// The shape of a set of LoRA adapters: rank r, alpha (the update is scaled by alpha / r), the dropout probability
/// on each adapter's input, which projections get an adapter, and which base modules train in full beside them.
/// Defaults: r 8, alpha 16 (twice the rank, as most published recipes; PEFT's own default is 8), dropout 0 (as
/// PEFT), the four attention projections. <see cref="Validate"/> throws <see cref="ArgumentException"/>; recipe
/// values are checked earlier, with their line, by the recipe schema.
/// reference: peft tuners/lora/config.py LoraConfig; Hu et al., "LoRA" (2021), section 4.1 (scaling alpha / r).
/// </summary>
public sealed record LoraConfig
{
    public int Rank { get; init; } = 8;

    public double Alpha { get; init; } = 16;

    /// <summary>Probability of zeroing each input element of an adapter while training; 0 skips dropout entirely.</summary>
    public double Dropout { get; init; }

    /// <summary>Projection names from <see cref="LoraTargets.Modules"/> (or "all-linear"); resolved by <see cref="Targets"/>.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = LoraTargets.Default;

    /// <summary>Base modules trained in full (<see cref="LoraTrainableModules.Names"/>).</summary>
    public IReadOnlyList<string> Trainable { get; init; } = [];

    /// <summary>alpha / r: the factor on B A x.</summary>
    public double Scale => Alpha / Rank;

    /// <summary>The target projections, distinct, in canonical order, "all-linear" expanded.</summary>
    public IReadOnlyList<string> Targets => LoraTargets.Resolve(TargetModules);

    public void Validate()
    {
        if (Rank < 1)
            throw new ArgumentException($"LoRA rank must be at least 1, got {Rank}.");
        if (!(Alpha > 0) || !double.IsFinite(Alpha))
            throw new ArgumentException($"LoRA alpha must be a positive number, got {Alpha}.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new ArgumentException($"LoRA dropout must be in [0, 1), got {Dropout}.");
        if (Targets.Count == 0)
            throw new ArgumentException("LoRA needs at least one target module.");
        foreach (string module in Trainable)
            if (!LoraTrainableModules.Names.Contains(module, StringComparer.Ordinal))
                throw new ArgumentException($"{module} is not a module LoRA can train in full; use {string.Join(", ", LoraTrainableModules.Names)}.");
    }

    /// <summary>Equality by value, lists included (a record compares list references otherwise).</summary>
    public bool Equals(LoraConfig? other) =>
        other is not null && Rank == other.Rank && Alpha == other.Alpha && Dropout == other.Dropout
        && Targets.SequenceEqual(other.Targets) && Trainable.Order().SequenceEqual(other.Trainable.Order());

    public override int GetHashCode() => HashCode.Combine(Rank, Alpha, Dropout, string.Join(",", Targets));
}
