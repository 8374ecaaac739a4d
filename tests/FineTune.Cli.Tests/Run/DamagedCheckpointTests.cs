using FineTune.Trainer.Checkpoints;
using Xunit;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// A flipped byte in any file of a checkpoint (every file its manifest lists, and the manifest itself) is caught on
/// resume: exit code 2 and one sentence naming the damaged file. The byte and its position are seeded; each file is
/// restored before the next is damaged, and the undamaged checkpoint then resumes fine.
/// </summary>
public sealed class DamagedCheckpointTests
{
    [Fact]
    public void AFlippedByteInAnyCheckpointFileIsRefusedOnResume()
    {
        using var tiny = new TinyRunRecipe();
        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2");
        Assert.True(code == 0, error);
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        CheckpointInfo checkpoint = store.List().Single();
        CheckpointManifest manifest = store.Verify(checkpoint);
        string[] files = [.. manifest.Files.Select(f => f.RelativePath), CheckpointManifest.FileName];
        Assert.Contains("model/model.safetensors", files);
        Assert.Contains("optimizer/optimizer-state.bin", files);
        Assert.Contains(TrainerState.FileName, files);

        var random = new Random(8);
        foreach (string relative in files)
        {
            string path = checkpoint.FilePath(relative);
            byte[] original = File.ReadAllBytes(path);
            byte[] damaged = (byte[])original.Clone();
            damaged[random.Next(damaged.Length)] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(path, damaged);
            var (damagedCode, output, message) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4", "resume=true");
            File.WriteAllBytes(path, original);
            Assert.True(damagedCode == 2, $"{relative}: exit {damagedCode}\n{output}\n{message}");
            Assert.Contains($"Checkpoint {checkpoint.DirectoryPath} is damaged", message);
            Assert.Contains(relative == CheckpointManifest.FileName ? CheckpointManifest.FileName : $"file {relative}", message);
            Assert.Single(message.Trim().Split('\n'));
        }

        var (resumedCode, resumedOutput, resumedError) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4", "resume=true");
        Assert.True(resumedCode == 0, resumedError);
        Assert.Contains("resuming from", resumedOutput);
    }
}
