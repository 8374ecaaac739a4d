using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using Xunit;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// Fresh adapters (PEFT's initialisation), the exactness of the no-adapter and no-dropout paths, and the dropout
/// masks' determinism: a function of (seed, step, micro-batch, layer, projection), the same for the forward and its
/// recompute, different from step to step, and absent in evaluation.
/// </summary>
public sealed class LoraAdapterTests
{
    [Fact]
    public void FreshAIsKaimingUniformWithPeftsBoundAndBIsZero()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.BiasLlama3), DType.Float32, Device.Cpu);
        using var adapters = LoraAdapters.Create(model, new LoraConfig { Rank = 16, TargetModules = [LoraTargets.AllLinear] }, seed: 7);
        Assert.Equal(2 * 7, adapters.Adapters.Count);
        foreach (LoraAdapter adapter in adapters.Adapters)
        {
            long inFeatures = adapter.A.Spec.Shape[1];
            float[] a = adapter.A.Tensor.ToArray<float>();
            // kaiming_uniform_(a = sqrt(5)) on (r, in): U(-b, b) with b = sqrt(1/3) * sqrt(3 / in) = 1 / sqrt(in), std b / sqrt(3).
            double bound = 1 / Math.Sqrt(inFeatures);
            double mean = a.Average(v => (double)v);
            double std = Math.Sqrt(a.Average(v => (v - mean) * (v - mean)));
            Assert.True(a.All(v => Math.Abs(v) <= bound), $"{adapter.A.Name}: a value beyond {bound}");
            Assert.True(a.Max(v => Math.Abs(v)) > 0.95 * bound, $"{adapter.A.Name}: values do not reach the bound {bound}");
            Assert.InRange(std / (bound / Math.Sqrt(3)), 0.9, 1.1);
            Assert.InRange(mean / bound, -0.1, 0.1);
            Assert.All(adapter.B.Tensor.ToArray<float>(), v => Assert.Equal(0f, v));
            Assert.True(adapter.A.Tensor.RequiresGrad && adapter.B.Tensor.RequiresGrad);
        }
        Assert.Equal(2 * 16 * (2 * (32 + 64) + 2 * (32 + 32) + 2 * (32 + 48) + (48 + 32)), adapters.ParameterCount);
    }

    [Fact]
    public void TheSameSeedGivesTheSameAdaptersAndAnotherSeedOthers()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), DType.Float32, Device.Cpu);
        using var first = LoraAdapters.Create(model, new LoraConfig(), seed: 11);
        using var again = LoraAdapters.Create(model, new LoraConfig(), seed: 11);
        using var other = LoraAdapters.Create(model, new LoraConfig(), seed: 12);
        Assert.All(first.Parameters.Zip(again.Parameters), pair => Assert.True(pair.First.Tensor.ValueEquals(pair.Second.Tensor)));
        Assert.False(first.Adapters[0].A.Tensor.ValueEquals(other.Adapters[0].A.Tensor));
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.BFloat16)]
    public void FreshAdaptersAndDetachedOnesLeaveTheLogitsBitIdentical(DType dtype)
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.BiasLlama3), dtype, Device.Cpu);
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        Tensor ids = ReferenceData.For(ModelFixtures.BiasLlama3).IdsTensor();
        Tensor before = model.Forward(ids);

        using var adapters = LoraAdapters.Create(model, new LoraConfig { TargetModules = [LoraTargets.AllLinear], Dropout = 0.5 }, seed: 3);
        adapters.AttachTo(model);
        adapters.DropoutPosition = new LoraDropoutPosition(0, 0);
        Assert.True(model.Forward(ids).ValueEquals(before), "B = 0 must add exactly nothing, dropout or not");

        RandomizeB(adapters);
        Assert.False(model.Forward(ids).ValueEquals(before));
        adapters.Detach();
        Assert.True(model.Forward(ids).ValueEquals(before), "a detached adapter must leave the base computation as it was");
    }

    [Fact]
    public void DropoutZeroIsTheExactNoDropoutPathWhileTraining()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), DType.Float32, Device.Cpu);
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        using var adapters = LoraAdapters.Create(model, new LoraConfig { Dropout = 0 }, seed: 5);
        RandomizeB(adapters);
        adapters.AttachTo(model);
        Tensor ids = ReferenceData.For(ModelFixtures.GqaTied).IdsTensor();
        Tensor eval = model.Forward(ids);
        adapters.DropoutPosition = new LoraDropoutPosition(3, 1);
        Assert.True(model.Forward(ids).ValueEquals(eval));
    }

    [Fact]
    public void DropoutMasksAreAFunctionOfTheTrainingPositionOnly()
    {
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), DType.Float32, Device.Cpu);
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        using var adapters = LoraAdapters.Create(model, new LoraConfig { Dropout = 0.3 }, seed: 5);
        RandomizeB(adapters);
        adapters.AttachTo(model);
        Tensor ids = ReferenceData.For(ModelFixtures.GqaTied).IdsTensor();
        Tensor eval = model.Forward(ids);

        adapters.DropoutPosition = new LoraDropoutPosition(4, 0);
        Tensor step4 = model.Forward(ids);
        Assert.False(step4.ValueEquals(eval));
        adapters.DropoutPosition = new LoraDropoutPosition(5, 0);
        Tensor step5 = model.Forward(ids);
        adapters.DropoutPosition = new LoraDropoutPosition(4, 1);
        Tensor step4Micro1 = model.Forward(ids);
        adapters.DropoutPosition = new LoraDropoutPosition(4, 0);
        Assert.True(model.Forward(ids).ValueEquals(step4), "the same position must redraw the same masks (forward and its recompute)");
        Assert.False(step5.ValueEquals(step4));
        Assert.False(step4Micro1.ValueEquals(step4));
        adapters.DropoutPosition = null;
        Assert.True(model.Forward(ids).ValueEquals(eval), "evaluation must not drop anything");
    }

    [Fact]
    public void DropoutKeepsAboutOneMinusPAndScalesTheKeptByItsInverse()
    {
        using var scope = TensorScope.Enter();
        Tensor x = FineTune.Torch.Torch.Ones([64, 1024]);
        float[] y = LoraDropout.Apply(x, 0.25, seed: 99).ToArray<float>();
        Assert.All(y, v => Assert.True(v == 0f || v == (float)(1 / 0.75), $"{v}"));
        double kept = y.Count(v => v != 0) / (double)y.Length;
        Assert.InRange(kept, 0.74, 0.76); // 65536 draws: 3 standard deviations are 0.005
        Assert.NotEqual(LoraDropout.MaskSeed(1, new(0, 0), 0, 0), LoraDropout.MaskSeed(1, new(0, 0), 0, 1));
        Assert.NotEqual(LoraDropout.MaskSeed(1, new(0, 0), 0, 0), LoraDropout.MaskSeed(1, new(0, 0), 1, 0));
        Assert.True(LoraDropout.MaskSeed(-1, new(long.MaxValue, int.MaxValue), 1000, 6) >= 0);
    }

    internal static void RandomizeB(LoraAdapters adapters)
    {
        using var generator = new Generator(1234);
        using (FineTune.Torch.Torch.NoGrad())
            foreach (LoraAdapter adapter in adapters.Adapters)
                using (TensorScope.Enter())
                    adapter.B.Tensor.CopyFrom(FineTune.Torch.Torch.Randn(adapter.B.Spec.Shape, generator) * 0.3);
    }
}
