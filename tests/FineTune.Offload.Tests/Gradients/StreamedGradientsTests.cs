using FineTune.Offload.Adam;
using FineTune.Offload.Gradients;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using Xunit;

namespace FineTune.Offload.Tests.Gradients;

/// <summary>Back-pressure: backward waits while published gradients fill their bound, and the wait is counted.</summary>
public sealed class StreamedGradientsTests
{
    // two stages of one (64 Ki) parameter each, one sub-group per stage
    private static readonly ParameterLayout s_layout = new(
        [new LayoutParameter("a", [256, 256]), new LayoutParameter("b", [256, 256])],
        [new LayoutStage([0], [0]), new LayoutStage([1], [1])],
        ElementType.Float32, subGroupElementCount: 65536);

    [Fact]
    public void WaitForRoomBlocksUntilTheOptimizerReleasesAndCountsTheWait()
    {
        using var scope = TensorScope.Enter();
        long bytes = 65536 * 4;
        using var gradients = new StreamedGradients(s_layout, maxOutstandingByteCount: bytes);
        gradients.Publish(1, FineTune.Torch.Torch.Full([65536], 1.0, DType.Float32));
        gradients.SetBoundary(s_layout.FlatOffset(1)); // the top stage's sub-group is final: the optimizer may take it
        Assert.Equal(0, gradients.RoomWaitSeconds);

        var waiting = new Thread(() => gradients.WaitForRoom(bytes)); // the next stage's gradient does not fit
        waiting.Start();
        Thread.Sleep(200);
        Assert.True(waiting.IsAlive);
        SubGroup top = s_layout.SubGroups.Single(g => g.FirstElement == s_layout.FlatOffset(1));
        gradients.Release(top);
        Assert.True(waiting.Join(TimeSpan.FromSeconds(10)));
        Assert.InRange(gradients.RoomWaitSeconds, 0.15, 10);

        gradients.WaitForRoom(bytes); // room now: no wait, nothing added
        Assert.InRange(gradients.RoomWaitSeconds, 0.15, 10);
    }
}
