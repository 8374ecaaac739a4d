using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Gradients;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// What consumed gradients leave behind in the micro-batch's tensor scope: nothing. A tied weight's block sums the
/// head's share and the embedding's into a new fp32 tensor; a handle to it left in the pass's scope would keep every
/// block's sum alive until backward ends (at Llama-3.2-3B, 8 x 192 MiB past the plan's bound).
/// </summary>
public sealed class ConsumedGradientsTests
{
    [Fact]
    public void ATiedBlocksFp32SumKeepsNoHandleInTheCallersScope()
    {
        LlamaConfig config = Config(tied: true) with { VocabSize = 5000 };
        TrainingOptions options = Options(microBatchSize: 1) with { EdgeBlockElementCount = 1 << 16, GradientTier = GradientTier.Consumed, Precision = PrecisionMode.BFloat16 };
        MemoryPlan plan = MemoryPlan.For(config, DType.BFloat16, options);
        using LlamaModel model = LlamaModel.Create(config, 7, DType.BFloat16, Device.Cpu);
        using var gradients = new ConsumedGradients(model, plan.Layout, long.MaxValue / 2, plan.PublishedByteCount); // no optimizer consumes here: no bound
        int head = plan.Layout.Stages.Count - 1;
        IReadOnlyList<LayoutBlock> blocks = plan.Layout.Blocks(0)!;
        Assert.Equal(3, blocks.Count);
        long row = config.HiddenSize;
        using var scope = TensorScope.Enter();
        int before = scope.OwnedCount;
        foreach (LayoutBlock block in blocks.Reverse())
        {
            foreach (int stage in new[] { head, 0 }) // the head's share first, then the owner's
            {
                Tensor weight = Torch.Torch.Zeros([block.Rows, row], DType.BFloat16), grad = Torch.Torch.Ones([block.Rows, row], DType.BFloat16);
                weight.Grad = grad;
                using var lease = new StageWeights(_ => weight);
                gradients.StageDone(stage, block, lease, firstMicroBatch: true);
                weight.Dispose();
                grad.Dispose();
            }
        }
        Assert.Equal(before, scope.OwnedCount);
        // every block reached the optimizer as the fp32 sum of both shares
        SubGroupSegment first = plan.Layout.SubGroups[0].Segments[0];
        var (pointer, type) = gradients.Source.Gradient(plan.Layout.SubGroups[0], first);
        Assert.Equal(FineTune.Offload.Adam.ElementType.Float32, type);
        unsafe { Assert.Equal(2f, *(float*)pointer); }
        gradients.Abandon();
    }
}
