using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Creating a model larger than host memory: <see cref="LlamaModel.CreateStreamed"/> draws the seeded weights chunk by
/// chunk straight into the engine's store (host or NVMe), and the result is the small in-memory creation's, bit for bit.
/// </summary>
public sealed class StreamedCreationTests
{
    [Theory]
    [InlineData(ParameterTier.Device, false)]
    [InlineData(ParameterTier.Nvme, true)]
    [InlineData(ParameterTier.Nvme, false)]
    public void AStreamedCreationTrainsExactlyLikeAnInMemoryOne(ParameterTier weights, bool bf16)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(5, 2);
        DType dtype = bf16 ? DType.BFloat16 : DType.Float32;
        (List<double> Losses, float[] Weights) Train(bool streamed)
        {
            using LlamaModel model = streamed ? LlamaModel.CreateStreamed(Config(tied: true), 7, dtype, Device.Cpu) : Model(dtype, tied: true);
            Assert.Equal(!streamed, model.IsResident);
            using var engine = new TrainingEngine(model, Options() with
            {
                Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32, ParameterTier = weights,
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path,
            });
            List<double> losses = Run(engine, batches).Select(m => m.Loss).ToList();
            return (losses, Weights(model));
        }
        var inMemory = Train(streamed: false);
        var streamed = Train(streamed: true);
        Assert.Equal(inMemory.Losses, streamed.Losses);
        Assert.Equal(inMemory.Weights, streamed.Weights);
    }

    [Fact]
    public void AStreamedModelEvaluatesAndBecomesResidentWithTheSameWeights()
    {
        using LlamaModel streamed = LlamaModel.CreateStreamed(Config(), 7, DType.Float32, Device.Cpu);
        using LlamaModel created = Model();
        using var scope = TensorScope.Enter();
        Tensor ids = FineTune.Torch.Torch.FromArray(new long[] { 1, 5, 9, 200, 3, 4 }, [1, 6]);
        using (FineTune.Torch.Torch.NoGrad())
            Assert.True(streamed.Forward(ids).ValueEquals(created.Forward(ids)));
        // the in-memory baseline makes it an ordinary model, drawing every weight once more
        using (ITrainer trainer = Trainers.Create(streamed, Options(), TrainingMode.InMemory))
            Assert.True(streamed.IsResident);
        Assert.Equal(Weights(created), Weights(streamed));
    }
}
