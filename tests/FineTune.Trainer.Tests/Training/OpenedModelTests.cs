using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// LlamaModel.Open: a model whose weights stay in the checkpoint until used, so one larger than host memory can be
/// evaluated or exported, or handed to an engine with parameter offload (which fills its weight file one parameter at
/// a time and starts the optimizer's masters from that file). Everything must equal the fully loaded model.
/// </summary>
public sealed class OpenedModelTests
{
    [Fact]
    public void AnOpenedModelTrainsExactlyLikeALoadedOne()
    {
        using var scratch = new ScratchDirectory();
        string folder = Exported(scratch, tied: true);
        List<Batch> batches = Batches(4, 2);
        (List<double> Losses, float[] Weights) Train(bool open, TrainingOptions options, TrainingMode mode = TrainingMode.Offloaded)
        {
            using LlamaModel model = open ? LlamaModel.Open(folder, DType.Float32, Device.Cpu) : LlamaModel.Load(folder, DType.Float32, Device.Cpu);
            Assert.Equal(!open, model.IsResident);
            List<double> losses;
            using (ITrainer engine = NewTrainer(model, options, mode))
                losses = Run(engine, batches).Select(m => m.Loss).ToList();
            Assert.True(model.IsResident); // the engine gives the trained weights back as ordinary tensors
            return (losses, Weights(model));
        }
        TrainingOptions resident = Options();
        TrainingOptions streamed = resident with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path };
        var reference = Train(open: false, resident);
        foreach (var other in new[] { Train(open: true, streamed), Train(open: true, resident), Train(open: false, streamed) })
        {
            Assert.Equal(reference.Losses, other.Losses);
            Assert.Equal(reference.Weights, other.Weights);
        }
        var inMemory = Train(open: false, Options(), TrainingMode.InMemory);
        Assert.Equal(inMemory.Losses, Train(open: true, Options(), TrainingMode.InMemory).Losses);
    }

    [Fact]
    public void AnOpenedModelEvaluatesAndExportsOneStageAtATime()
    {
        using var scratch = new ScratchDirectory();
        string folder = Exported(scratch, tied: false), again = Path.Combine(scratch.Path, "again");
        using LlamaModel loaded = LlamaModel.Load(folder, DType.Float32, Device.Cpu);
        using LlamaModel opened = LlamaModel.Open(folder, DType.Float32, Device.Cpu);
        Batch batch = Batches(1, 2)[0];
        float[] Logits(LlamaModel model)
        {
            using var scope = TensorScope.Enter();
            using var noGrad = FineTune.Torch.Torch.NoGrad();
            return model.Forward(FineTune.Torch.Torch.FromArray(batch.InputIds, [batch.BatchSize, batch.SequenceLength])).Contiguous().ToArray<float>();
        }
        Assert.Equal(Logits(loaded), Logits(opened));
        Assert.All(opened.Parameters, p => Assert.False(p.IsResident)); // each stage was let go after its turn
        LlamaExporter.Export(opened, again);
        Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "model.safetensors")), File.ReadAllBytes(Path.Combine(again, "model.safetensors")));
        Assert.Throws<InvalidOperationException>(() => opened.Parameters[0].Tensor);
        Assert.Throws<UserErrorException>(() => LlamaModel.Open(Path.Combine(scratch.Path, "missing"), DType.Float32, Device.Cpu));
    }

    [Fact]
    public void WithoutRestoreOnDisposeTheWeightsEndWithTheEngine()
    {
        // a run saves its weights while the engine lives and then lets them go, so the whole model is never read back
        // into host memory; the saved bytes are those of an engine that restores them
        using var scratch = new ScratchDirectory();
        string folder = Exported(scratch, tied: true);
        List<Batch> batches = Batches(3, 2);
        TrainingOptions streamed = Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path };

        using (LlamaModel restored = LlamaModel.Open(folder, DType.Float32, Device.Cpu))
        {
            using (var engine = new TrainingEngine(restored, streamed))
                Run(engine, batches);
            LlamaExporter.Export(restored, Path.Combine(scratch.Path, "restored"));
        }
        using LlamaModel abandoned = LlamaModel.Open(folder, DType.Float32, Device.Cpu);
        using (var engine = new TrainingEngine(abandoned, streamed with { RestoreWeightsOnDispose = false }))
        {
            Run(engine, batches);
            LlamaExporter.Export(abandoned, Path.Combine(scratch.Path, "saved"));
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(scratch.Path, "restored", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(scratch.Path, "saved", "model.safetensors")));
        Assert.All(abandoned.Parameters, p => Assert.False(p.IsResident));
        Assert.Throws<InvalidOperationException>(() => abandoned.Parameters[1].Tensor);
        Assert.Empty(Directory.GetFiles(scratch.Path)); // the weight file went with the engine
    }

    [Fact]
    public void AnEngineClosesTheCheckpointOnceItHoldsTheWeightsAndAHandleOpenedBeforeLeavesThemAlone()
    {
        using var scratch = new ScratchDirectory();
        string folder = Exported(scratch, tied: true);
        string weights = Path.Combine(folder, "model.safetensors");
        Batch batch = Batches(1, 2)[0];
        foreach ((TrainingOptions options, TrainingMode mode) in new[]
        {
            (Options(), TrainingMode.Offloaded),
            (Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path }, TrainingMode.Offloaded),
            (Options(), TrainingMode.InMemory),
        })
        {
            using LlamaModel model = LlamaModel.Open(folder, DType.Float32, Device.Cpu);
            Assert.True(OpenCount(weights) > 0);
            NamedParameter first = model.Parameters[0];
            IDisposable? held = model.UseWeights(first); // read from the checkpoint before the engine takes the model
            using ITrainer engine = NewTrainer(model, options, mode);
            held?.Dispose(); // must not evict what the engine put in its place
            Assert.Equal(0, OpenCount(weights)); // a pruned checkpoint would free its space now, not at the end of the run
            Assert.True(double.IsFinite(engine.Step(batch).Loss), options.ToString());
        }
    }

    [Fact]
    public void AReadThatFailsWhileTheEngineBuildsLeavesNoWeightInTheFreedPool()
    {
        using var scratch = new ScratchDirectory();
        string folder = Exported(scratch, tied: false);
        using LlamaModel reference = LlamaModel.Load(folder, DType.Float32, Device.Cpu);
        using LlamaModel model = LlamaModel.Open(folder, DType.Float32, Device.Cpu);
        // the LM head, last in the file, can no longer be read: the engine fails after moving every other parameter
        string path = Path.Combine(folder, "model.safetensors");
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
            file.SetLength(file.Length - 64);
        Assert.ThrowsAny<Exception>(() => new TrainingEngine(model, Options()));
        // the engine copied weights into its pool before the failure, but the model never pointed into that pool: it
        // still reads every readable weight from its checkpoint, unchanged
        int readable = 0;
        foreach (NamedParameter parameter in model.Parameters)
        {
            NamedParameter expected = reference.Parameters.Single(p => p.Name == parameter.Name);
            StageWeights weights;
            try
            {
                weights = model.UseWeights(parameter);
            }
            catch (FineTune.IO.Safetensors.SafetensorsFormatException)
            {
                continue; // in the truncated tail of the file
            }
            using (weights)
                Assert.Equal(expected.Tensor.Contiguous().ToArray<float>(), weights[parameter].Contiguous().ToArray<float>());
            readable++;
        }
        Assert.True(readable >= model.Parameters.Count - 2, $"{readable} of {model.Parameters.Count} weights readable");
    }

    /// <summary>File descriptors of this process open on <paramref name="path"/> (Linux /proc/self/fd).</summary>
    private static int OpenCount(string path) => new DirectoryInfo("/proc/self/fd").GetFileSystemInfos()
        .Count(fd => { try { return fd.LinkTarget == path; } catch (IOException) { return false; } });

    /// <summary>TinyTraining's model exported as an HF folder under <paramref name="scratch"/>; returns the folder.</summary>
    private static string Exported(ScratchDirectory scratch, bool tied)
    {
        string folder = Path.Combine(scratch.Path, "model");
        using LlamaModel source = Model(tied: tied);
        LlamaExporter.Export(source, folder);
        return folder;
    }
}
