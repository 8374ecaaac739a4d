namespace FineTune.Torch.Distributed;

/// <summary>The c10d library a <see cref="ProcessGroup"/> moves tensors with (codes match the native shim's).</summary>
public enum DistributedBackend
{
    /// <summary>Gloo: CPU tensors over TCP; in every build that found the gloo headers (build.sh installs them).</summary>
    Gloo = 0,

    /// <summary>NCCL: CUDA tensors; only in shims built against a CUDA libtorch with nccl.h.</summary>
    Nccl = 1,
}
