using FineTune.Trainer.Checkpoints;
using Xunit;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// A flipped byte in any file of a checkpoint (every file its manifest lists, and the manifest itself) is caught on
/// resume: exit code 2 and one sentence naming the damaged file. The byte and its position are seeded; each file is
/// restored before the next is damaged, and the undamaged checkpoint then resumes fine. The message offers the
/// previous checkpoint, and resuming from that one works and drops the newer one.
/// </summary>
public sealed class DamagedCheckpointTests
{
    [Fact]
    public void AFlippedByteInAnyCheckpointFileIsRefusedOnResume()
    {
        using var tiny = new TinyRunRecipe();
        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4");
        Assert.True(code == 0, error);
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        Assert.Equal([2L, 4L], store.List().Select(c => c.Step));
        CheckpointInfo previous = store.List()[0], checkpoint = store.List()[1];
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
            Assert.Contains($"resume from the previous checkpoint with resume={previous.DirectoryPath} --discard-newer", message);
            Assert.Single(message.Trim().Split('\n'));
        }

        var (resumedCode, resumedOutput, resumedError) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4", "resume=true");
        Assert.True(resumedCode == 0, resumedError);
        Assert.Contains($"resuming from {checkpoint.DirectoryPath} (step 4)", resumedOutput);

        // take the offer: damage step 4 again and resume from step 2; without --discard-newer the damaged step 4 is
        // kept and the resume refused (it would overwrite it); with it, step 4 goes and steps 3-4 are trained again
        string bin = checkpoint.FilePath("optimizer/optimizer-state.bin");
        byte[] bytes = File.ReadAllBytes(bin);
        bytes[^1] ^= 0x10;
        File.WriteAllBytes(bin, bytes);
        var (keptCode, _, keptError) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4", $"resume={previous.DirectoryPath}");
        Assert.Equal(2, keptCode);
        Assert.Contains("holds 1 checkpoint(s) newer than", keptError);
        Assert.Contains("add --discard-newer to delete them", keptError);
        Assert.True(File.Exists(bin), "the refused resume must keep the newer checkpoint");
        var (offerCode, offerOutput, offerError) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4", $"resume={previous.DirectoryPath}", "--discard-newer");
        Assert.True(offerCode == 0, offerError);
        Assert.Contains($"resuming from {previous.DirectoryPath} (step 2); --discard-newer deleted 1 newer checkpoint(s)", offerOutput);
        Assert.Contains("finished 4/4 steps", offerOutput);
    }
}
