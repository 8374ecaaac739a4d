namespace FineTune.Offload.Parameters;

/// <summary>A pool buffer class of <see cref="WeightSlots"/>: its name in the pool and how many slots it has.</summary>
public readonly record struct WeightSlotClass(string Name, int Count);
