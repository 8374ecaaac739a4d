namespace FineTune.Trainer.Recipes;

/// <summary>
/// offload: the memory budgets the planner must respect and, optionally, explicit tiers per class of state.
/// Budgets are GiB (2^30 bytes); null means "what the machine has" as the schema describes.
/// </summary>
public sealed record OffloadSection
{
    public const double BytesPerGb = 1024.0 * 1024 * 1024;

    public double? DeviceGb { get; init; }
    public double? HostGb { get; init; }
    /// <summary>This rank's folder: <see cref="NvmeDirPattern"/> with {rank} replaced by the data-parallel rank.</summary>
    public string? NvmeDir { get; init; }

    /// <summary>offload.nvme_dir as the recipe gives it (what is written back), e.g. /nvme/swap-{rank}.</summary>
    public string? NvmeDirPattern { get; init; }

    public const string RankPlaceholder = "{rank}";
    public double? NvmeGb { get; init; }
    public required StorageTier OptimizerStates { get; init; }
    public required StorageTier Activations { get; init; }
    public required StorageTier Params { get; init; }
    /// <summary>offload.gradients: auto, host or nvme (for an update that waits for the norm).</summary>
    public required StorageTier Gradients { get; init; }
    public long? SubGroupParams { get; init; }
    public required int QueueDepth { get; init; }
    public required IoEngine IoEngine { get; init; }

    internal static OffloadSection From(RecipeValues v, int rank) => new()
    {
        DeviceGb = v.NullableDouble("offload.device_gb"),
        HostGb = v.NullableDouble("offload.host_gb"),
        NvmeDir = v.String("offload.nvme_dir")?.Replace(RankPlaceholder, rank.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal),
        NvmeDirPattern = v.String("offload.nvme_dir"),
        NvmeGb = v.NullableDouble("offload.nvme_gb"),
        OptimizerStates = v.Choice<StorageTier>("offload.optimizer_states"),
        Activations = v.Choice<StorageTier>("offload.activations"),
        Params = v.Choice<StorageTier>("offload.params"),
        Gradients = v.Choice<StorageTier>("offload.gradients"),
        SubGroupParams = v.NullableLong("offload.sub_group_params"),
        QueueDepth = v.Int("offload.queue_depth"),
        IoEngine = v.Choice<IoEngine>("offload.io_engine"),
    };
}
