using FineTune.Offload.Memory;

namespace FineTune.Offload.Parameters;

/// <summary>A pool buffer class of <see cref="WeightSlots"/>: its kind in the pool and how many slots it has.</summary>
public readonly record struct WeightSlotClass(BufferKind Kind, int Count);
