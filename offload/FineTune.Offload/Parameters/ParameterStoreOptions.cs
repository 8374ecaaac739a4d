namespace FineTune.Offload.Parameters;

/// <summary>How a <see cref="ParameterStore"/> keeps the weights.</summary>
public sealed record ParameterStoreOptions
{
    public WeightTier Tier { get; init; } = WeightTier.Resident;

    /// <summary>NVMe tier: decoder-layer slots (the layer computing plus LayerSlots - 1 prefetched ahead); an embedding or LM head larger than a layer gets one more slot of its own size.</summary>
    public int LayerSlots { get; init; } = 3;

    /// <summary>NVMe tier: write-back buffers of one sub-group each (update k fills one while k-1 is written).</summary>
    public int WriteBackBuffers { get; init; } = 2;

    /// <summary>
    /// A frozen store (LoRA's base): filled once and never written, so no write-back buffers are planned or created
    /// (<see cref="ParameterStore.WriteBack"/> is null) and its views do not require grad (backward passes gradients
    /// through the weights to the inputs but computes none for them).
    /// </summary>
    public bool ReadOnly { get; init; }
}
