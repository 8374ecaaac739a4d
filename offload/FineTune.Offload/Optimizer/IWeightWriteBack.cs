using FineTune.Offload.Adam;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Where <see cref="PartitionedOptimizer"/> puts the updated low-precision weights when the parameters' own memory
/// is not resident (parameter offload): per sub-group, the fused AdamW pass writes the group's weights into a
/// buffer from <see cref="Rent"/> (element i of the group at Rent + i * WeightType.ByteCount()), then
/// <see cref="Commit"/> sends it on (to NVMe) without waiting; a step ends with <see cref="Flush"/>.
/// With a write-back, <see cref="HostParameter.Weight"/> is read only while the optimizer is created (the initial
/// weights) and never written; every later weight goes through here, the initial ones included.
/// The optimizer calls Rent and Commit from one flow at a time, in pairs.
/// </summary>
public interface IWeightWriteBack
{
    /// <summary>The weights' element type (every parameter's).</summary>
    ElementType WeightType { get; }

    /// <summary>Memory for <paramref name="group"/>'s weights; may wait for an earlier write to free a buffer.</summary>
    nint Rent(SubGroup group);

    /// <summary>Starts writing the buffer rented for <paramref name="group"/>; returns at once with the write's task.</summary>
    Task Commit(SubGroup group);

    /// <summary>
    /// Fills the buffer rented for <paramref name="group"/> with the group's weights as they are now (before this step's
    /// update writes them), waiting for the read: the previous weights of residual masters that no one carried.
    /// </summary>
    void ReadCurrent(SubGroup group) => throw new NotSupportedException($"{GetType().Name} cannot read weights back; residual masters need a write-back that can.");

    /// <summary>Waits until every committed write is done; rethrows the first that failed.</summary>
    void Flush();
}
