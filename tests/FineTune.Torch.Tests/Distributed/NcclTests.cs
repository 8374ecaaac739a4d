using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>
/// The NCCL path: one rank on one GPU (NCCL refuses two ranks on the same device, and these machines have one), so
/// the collectives are identities with known results; what it proves is that the group builds, takes CUDA tensors,
/// uses the native reduce-scatter and waits within its bound. Without NCCL, the group is refused with a sentence.
/// </summary>
public sealed class NcclTests
{
    private static readonly ProcessGroupOptions s_nccl = new() { Backend = DistributedBackend.Nccl, Timeout = TimeSpan.FromSeconds(60) };

    [NcclFact]
    public void OneRankOnOneGpuRunsEveryCollective()
    {
        using TcpStore store = TcpStore.Serve("127.0.0.1", 0, 1, s_nccl.Timeout);
        using ProcessGroup group = ProcessGroup.Join(store, 0, 1, s_nccl);
        Assert.True(group.SupportsNativeReduceScatter);
        using Tensor host = Torch.FromArray<float>([1, 2, 3, 4], [4]);
        using Tensor t = host.To(Device.Cuda(0));
        group.AllReduce(t);
        group.Broadcast(t, 0);
        using Tensor gathered = Torch.Zeros([4], DType.Float32, Device.Cuda(0));
        group.AllGather(t, gathered);
        using Tensor shard = Torch.Zeros([4], DType.Float32, Device.Cuda(0));
        group.ReduceScatter(gathered, shard);
        group.Barrier();
        using Tensor back = shard.To(Device.Cpu);
        Assert.Equal([1f, 2f, 3f, 4f], back.ToArray<float>());
    }

    [WithoutNcclFact]
    public void WithoutNcclTheGroupIsRefusedWithASentence()
    {
        using TcpStore store = TcpStore.Serve("127.0.0.1", 0, 1, TimeSpan.FromSeconds(5));
        var e = Assert.Throws<DistributedException>(() => ProcessGroup.Join(store, 0, 1, s_nccl));
        Assert.Equal("rank 0 of 1: this FineTune was built without NCCL; rebuild it with FINETUNE_LIBTORCH=<a CUDA libtorch> ./build.sh, with nccl.h where CMake finds it.", e.Message);
    }
}
