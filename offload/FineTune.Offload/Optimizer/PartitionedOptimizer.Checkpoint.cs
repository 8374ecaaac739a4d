using FineTune.Offload.Memory;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

/// <summary>What a checkpoint needs of the optimizer: its states as they stand, linked where the swap file allows it.</summary>
public sealed partial class PartitionedOptimizer
{
    /// <summary>Writes the optimizer state to <paramref name="directory"/> (see <see cref="OptimizerStateFile"/>); <paramref name="progress"/> gets the bytes done so far.</summary>
    public SavedStates SaveState(string directory, Action<long>? progress = null) => OptimizerStateFile.Save(this, directory, progress);

    /// <summary>Replaces the state with the one saved in <paramref name="directory"/>, rewriting the weights from it; <paramref name="progress"/> gets the bytes read so far.</summary>
    public void LoadState(string directory, Action<long>? progress = null) => OptimizerStateFile.Load(this, directory, progress);

    /// <summary>Bytes of the states (12 per parameter).</summary>
    public long StateByteCount => SubGroups.Sum(g => g.StateByteCount);

    /// <summary>
    /// Keep each written sub-group's CRC-32C, so a checkpoint that links the swap file need not read it back. The run
    /// turns it on for the step before a checkpoint; without it the checkpoint reads the states once for their CRCs.
    /// </summary>
    public bool RecordStateChecksums
    {
        get => _pipeline?.RecordChecksums ?? false;
        set
        {
            if (_pipeline is not null)
                _pipeline.RecordChecksums = value;
        }
    }

    /// <summary>The swap file on NVMe, when the states live there.</summary>
    internal NvmeSwapStore? NvmeStates => _pipeline?.Store as NvmeSwapStore;

    internal bool TryGetStateChecksum(SubGroup group, out uint crc)
    {
        crc = 0;
        return _pipeline is not null && _pipeline.TryGetChecksum(group.Index, out crc);
    }

    /// <summary>Hands <paramref name="groups"/>' current states to <paramref name="visit"/>, in the given order.</summary>
    internal void VisitStates(IReadOnlyList<SubGroup> groups, Action<SubGroup, HostLease> visit)
    {
        if (_pipeline is not null)
        {
            Task.Run(() => _pipeline.VisitAsync(groups, visit)).GetAwaiter().GetResult();
            return;
        }
        foreach (SubGroup group in groups)
            visit(group, _resident[group.Index]!);
    }
}
