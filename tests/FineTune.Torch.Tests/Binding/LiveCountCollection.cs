using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// Tests that assert on the process-wide live-tensor counter run in this collection, which xunit runs alone
/// (no other test creates or frees tensors meanwhile).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LiveCountCollection
{
    public const string Name = "LiveCount";

    /// <summary>Finalizes tensors that earlier tests leaked to the GC, so they cannot be released mid-test.</summary>
    public static long SettledLiveCount()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return FineTune.Torch.Tensor.LiveCount;
    }
}
