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
    public string? NvmeDir { get; init; }
    public double? NvmeGb { get; init; }
    public required StorageTier OptimizerStates { get; init; }
    public required StorageTier Activations { get; init; }
    public required StorageTier Params { get; init; }
    public long? SubGroupParams { get; init; }
    public required int QueueDepth { get; init; }
    public required IoEngine IoEngine { get; init; }

    internal static OffloadSection From(RecipeValues v) => new()
    {
        DeviceGb = v.NullableDouble("offload.device_gb"),
        HostGb = v.NullableDouble("offload.host_gb"),
        NvmeDir = v.String("offload.nvme_dir"),
        NvmeGb = v.NullableDouble("offload.nvme_gb"),
        OptimizerStates = v.Choice<StorageTier>("offload.optimizer_states"),
        Activations = v.Choice<StorageTier>("offload.activations"),
        Params = v.Choice<StorageTier>("offload.params"),
        SubGroupParams = v.NullableLong("offload.sub_group_params"),
        QueueDepth = v.Int("offload.queue_depth"),
        IoEngine = v.Choice<IoEngine>("offload.io_engine"),
    };
}
