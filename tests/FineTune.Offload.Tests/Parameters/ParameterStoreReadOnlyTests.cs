using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Parameters;
using FineTune.Offload.Storage;
using FineTune.Offload.Tests.Optimizer;
using FineTune.Torch;
using Xunit;

namespace FineTune.Offload.Tests.Parameters;

/// <summary>
/// A read-only parameter store (LoRA's frozen base) on either tier: its plan and pool have no write-back buffers, it
/// offers no write-back, its leases serve the filled values, and its views do not require grad; the same store
/// writable plans write-back buffers and hands out views that do (the contrast the option exists for).
/// </summary>
public sealed class ParameterStoreReadOnlyTests : IDisposable
{
    // two stages: [0] (3, 5) alone, [1] (4, 8) and (8,)
    private static readonly ParameterLayout s_layout = new(
        [new LayoutParameter("a", [3, 5]), new LayoutParameter("b", [4, 8]), new LayoutParameter("c", [8])],
        [new LayoutStage([0], [0]), new LayoutStage([1, 2], [1, 2])],
        ElementType.BFloat16, subGroupElementCount: 2048);

    private readonly SwapDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData(WeightTier.Resident, true)]
    [InlineData(WeightTier.Nvme, true)]
    [InlineData(WeightTier.Nvme, false)]
    public void ReadOnlyStoreHasNoWriteBackAndItsViewsNeedNoGrad(WeightTier tier, bool readOnly)
    {
        var options = new ParameterStoreOptions { Tier = tier, LayerSlots = 2, ReadOnly = readOnly };
        var plan = new PoolPlan();
        ParameterStore.AddToPlan(plan, s_layout, options);
        Assert.Equal(!readOnly && tier == WeightTier.Nvme, plan.Get(BufferKind.WeightWriteBack) is not null);

        using var scope = TensorScope.Enter();
        using var pool = HostMemoryPool.Create(plan, long.MaxValue);
        using var devices = new NvmeDeviceSet(IoEngineKind.Threads);
        using var store = new ParameterStore(s_layout, options, pool, tier == WeightTier.Nvme ? devices.For(_directory.Path, "test weights") : null);
        Assert.Equal(!readOnly && tier == WeightTier.Nvme, store.WriteBack is not null);
        Tensor[] values = s_layout.Parameters.Select((p, i) => FineTune.Torch.Torch.Full(p.Shape, 0.5 + i, DType.Float32)).ToArray();
        for (int p = 0; p < values.Length; p++)
            store.Fill(p, 0, values[p]);
        store.CompleteFill();

        using (StageLease lease = store.Acquire(1, +1))
        {
            foreach (int p in new[] { 1, 2 })
            {
                Tensor view = lease.Get(p);
                Assert.Equal(!readOnly, view.RequiresGrad);
                Assert.True(view.To(DType.Float32).ValueEquals(values[p]), s_layout.Parameters[p].Name);
            }
        }
        Assert.Equal(readOnly || tier == WeightTier.Resident, pool.ReservedByteCountOf(BufferKind.WeightWriteBack) == 0);
    }
}
