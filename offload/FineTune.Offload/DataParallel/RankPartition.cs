using FineTune.Offload.Optimizer;

namespace FineTune.Offload.DataParallel;

/// <summary>
/// ZeRO ownership of the flat parameter space among <see cref="WorldSize"/> data-parallel ranks, in whole optimizer
/// sub-groups dealt round-robin: sub-group g of the layout belongs to rank g mod W. Stripe s is the W consecutive
/// sub-groups [s W, (s + 1) W): one per rank, contiguous in the flat space, so one collective moves a stripe (a
/// reduce-scatter of its gradients to the owners, an all-gather of its updated weights from them), and each rank's
/// optimizer state is about 1/W of the whole (exactly 1/W when W divides the sub-group count and they are all equal;
/// otherwise the ranks differ by at most one sub-group). Rank r owns the sub-group of every stripe but, perhaps, the
/// last: <see cref="Owned"/>[i] is the layout's sub-group i W + r, re-indexed i, so the owned list is itself a
/// partition an optimizer can hold (its swap extents indexed 0..k-1), and owned sub-group i lies in stripe i.
/// The sub-groups keep their flat offsets and segments, so a checkpoint of them is layout-free.
/// Immutable.
/// </summary>
public sealed class RankPartition
{
    public RankPartition(IReadOnlyList<SubGroup> groups, int rank, int worldSize)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is not in 0..{worldSize - 1}");
        if (groups.Count < worldSize)
            throw new UserErrorException($"the model splits into {groups.Count} optimizer sub-group(s), fewer than the {worldSize} data-parallel ranks, so some rank would own no state; lower offload.sub_group_params (now {groups.Max(g => g.ElementCount):N0} elements) or use fewer ranks.");
        Groups = groups;
        Rank = rank;
        WorldSize = worldSize;
        var owned = new List<SubGroup>();
        for (int g = rank; g < groups.Count; g += worldSize)
            owned.Add(groups[g].Reindexed(owned.Count));
        Owned = owned;
        StripeCount = (groups.Count + worldSize - 1) / worldSize;
        ShardElementCount = groups.Max(g => g.ElementCount);
    }

    public int Rank { get; }

    public int WorldSize { get; }

    /// <summary>Every sub-group of the layout, in flat order.</summary>
    public IReadOnlyList<SubGroup> Groups { get; }

    /// <summary>This rank's sub-groups, ascending, re-indexed 0..k-1 (owned sub-group i is in stripe i).</summary>
    public IReadOnlyList<SubGroup> Owned { get; }

    public int StripeCount { get; }

    /// <summary>Elements of each rank's slot in a stripe buffer: the largest sub-group (every stripe uses the same slots).</summary>
    public long ShardElementCount { get; }

    /// <summary>The rank that owns layout sub-group <paramref name="group"/>.</summary>
    public int Owner(int group) => group % WorldSize;

    /// <summary>The layout sub-group in slot <paramref name="slot"/> of stripe <paramref name="stripe"/>; null past the last one.</summary>
    public SubGroup? InStripe(int stripe, int slot)
    {
        int g = stripe * WorldSize + slot;
        return g < Groups.Count ? Groups[g] : null;
    }

    /// <summary>The layout sub-group this rank's owned sub-group <paramref name="ownedIndex"/> is.</summary>
    public SubGroup LayoutGroupOf(int ownedIndex) => Groups[ownedIndex * WorldSize + Rank];

    /// <summary>State bytes (12 per element) of the sub-groups rank <paramref name="rank"/> owns.</summary>
    public long StateByteCountOf(int rank)
    {
        long bytes = 0;
        for (int g = rank; g < Groups.Count; g += WorldSize)
            bytes += Groups[g].StateByteCount;
        return bytes;
    }
}
