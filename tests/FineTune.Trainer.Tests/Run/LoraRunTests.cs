using FineTune.Torch;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Models;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Training.Adapters;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// LoRA through `finetune run`'s loop in-process (<see cref="TrainingRun"/> choosing the LoRA engine): a cancelled
/// run resumes with bitwise the losses of an uninterrupted one (base generated from model.config onto NVMe, dropout
/// on, a trained norm, two micro-batches a step); its checkpoints hold the PEFT adapter, the adapter optimizer state
/// and the base's record, not the model; and a resume over a base folder whose file changed is refused with one
/// sentence naming that file.
/// </summary>
public sealed class LoraRunTests
{
    private static readonly string[] s_lora = ["model.adapter=lora", "model.lora.rank=4", "model.lora.dropout=0.1", "model.lora.trainable=[norm]", "optimizer.lr=1e-2", "offload.params=nvme"];

    [Fact]
    public void CancelledLoraRunResumesWithBitIdenticalLosses()
    {
        using var reference = new TinyRunRecipe();
        RunResult whole = RunResumeTests.Execute(reference.Load(s_lora), CancellationToken.None);
        Assert.Equal(8, whole.Step);
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(Path.Combine(reference.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), expected.Keys);
        Assert.True(expected[8] < expected[1] - 0.1, $"loss should fall: {expected[1]} -> {expected[8]}");
        CheckpointInfo last = new CheckpointStore(Path.Combine(reference.RunDirectory, "checkpoints")).List().Last();
        Assert.True(LoraCheckpoints.IsLora(last));
        Assert.False(Directory.Exists(last.FilePath(RunCheckpoints.ModelFolder)), "a LoRA checkpoint holds the adapter, not the model");
        Assert.True(File.Exists(last.FilePath("adapter/adapter_model.safetensors")) && File.Exists(last.FilePath("adapter/adapter_config.json")));
        Assert.Contains("random init of model.config, seed 7", File.ReadAllText(last.FilePath(BaseFingerprint.FileName)));

        using var stopped = new TinyRunRecipe();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        RunResult first = RunResumeTests.Execute(stopped.Load(s_lora), cancel.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(1, first.Step);
        RunResult resumed = RunResumeTests.Execute(stopped.Load([.. s_lora, "resume=true"]), CancellationToken.None);
        Assert.Equal(1, resumed.StartStep);
        Assert.Equal(8, resumed.Step);
        SortedDictionary<long, double> actual = RunMetricsLog.ReadLosses(Path.Combine(stopped.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (step, loss) in expected)
            Assert.True(BitConverter.DoubleToInt64Bits(loss) == BitConverter.DoubleToInt64Bits(actual[step]), $"step {step}: {loss:R} vs {actual[step]:R}");
    }

    [Fact]
    public void ResumeOverABaseWhoseFileChangedIsRefusedNamingTheFile()
    {
        using var tiny = new TinyRunRecipe();
        string baseFolder = Path.Combine(tiny.OutputDirectory, "base");
        using (var scope = TensorScope.Enter())
        using (LlamaModel model = LlamaModel.Create(RunSetup.ConfigOf(tiny.Load(), null), 3, DType.Float32, Device.Cpu))
            LlamaExporter.Export(model, baseFolder);
        string[] overrides = [.. s_lora, $"model.path={baseFolder}", "training.max_steps=2"];
        RunResumeTests.Execute(tiny.Load(WithoutConfig(overrides)), CancellationToken.None);

        // one byte of a weight flipped in place: same size, so only the CRC recorded in base.json can tell
        string weights = Path.Combine(baseFolder, "model.safetensors");
        using (var stream = new FileStream(weights, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = stream.Length - 3;
            int b = stream.ReadByte();
            stream.Position = stream.Length - 3;
            stream.WriteByte((byte)(b ^ 0x10));
        }
        var error = Assert.Throws<UserErrorException>(() =>
            RunResumeTests.Execute(tiny.Load(WithoutConfig([.. overrides, "training.max_steps=3", "resume=true"])), CancellationToken.None));
        Assert.Contains($"The LoRA base changed since {Path.Combine(tiny.RunDirectory, "checkpoints", "step_2")} was written: {weights} has CRC-32C", error.Message);
        Assert.Contains("put the base the run started from back at", error.Message);
        Assert.Single(error.Message.Split(". ", StringSplitOptions.RemoveEmptyEntries)); // one sentence
    }

    /// <summary>model.path and model.config are exclusive: drop the tiny recipe's config when a base folder is given.</summary>
    private static string[] WithoutConfig(string[] overrides) => [.. overrides, "model.config=null"];
}
