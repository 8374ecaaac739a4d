using System.Text;
using System.Text.Json.Nodes;
using FineTune.IO;
using FineTune.Tests;
using FineTune.Trainer.Checkpoints;
using Xunit;

namespace FineTune.Trainer.Tests.Checkpoints;

/// <summary>Atomic checkpoint folders: round trip, damage detection per file, crash leftovers, pruning.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "ft-ckpt-" + Guid.NewGuid().ToString("N"));
    private readonly CheckpointStore _store;

    public CheckpointTests() => _store = new CheckpointStore(Path.Combine(_root, "checkpoints"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    private static byte[] Pattern(int byteCount, int seed)
    {
        var bytes = new byte[byteCount];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static TrainerState State(long step) => new()
    {
        Step = step,
        Epoch = 1,
        DataPosition = new JsonObject { ["example_index"] = 1234, ["permutation_seed"] = 99 },
        RngStates = new Dictionary<string, byte[]> { ["cpu"] = [1, 2, 3, 250], ["shuffle"] = Pattern(40, 7) },
        SchedulerState = new JsonObject { ["last_lr"] = 1.5e-5 },
        LossScale = 65536,
        SkippedSteps = 2,
        TokensSeen = 1L << 33,
    };

    /// <summary>Writes a checkpoint the way the trainer will: a streamed weights file, files written by path, state and recipe.</summary>
    private string WriteCheckpoint(long step, int keepLast = 5)
    {
        using CheckpointWriter writer = _store.BeginWrite(step);
        using (Stream weights = writer.CreateFile("model.safetensors"))
        {
            weights.Write(Pattern(300_000, (int)step));
            weights.Write(Pattern(1_234, (int)step + 1));
        }
        File.WriteAllBytes(writer.PathFor("optimizer/sub_group_000.bin"), Pattern(70_000, (int)step + 2));
        File.WriteAllBytes(writer.PathFor("optimizer/sub_group_001.bin"), Pattern(10, (int)step + 3));
        writer.WriteTrainerState(State(step));
        writer.WriteText("recipe.yaml", "training:\n  batch_size: 4\n");
        return writer.Commit(keepLast);
    }

    [Fact]
    public void RoundTripRecordsEveryFileWithItsSizeAndCrc()
    {
        string folder = WriteCheckpoint(100);
        Assert.Equal(Path.Combine(_store.DirectoryPath, "step_100"), folder);
        CheckpointInfo info = Assert.Single(_store.List());
        Assert.Equal(100, info.Step);
        CheckpointManifest manifest = _store.Verify(info);
        Assert.Equal((CheckpointManifest.ExpectedMagic, 2, 100L), (manifest.Magic, manifest.Version, manifest.Step));
        Assert.Equal(["model.safetensors", "optimizer/sub_group_000.bin", "optimizer/sub_group_001.bin", "recipe.yaml", "trainer_state.json"],
            manifest.Files.Select(f => f.RelativePath));
        foreach (CheckpointFileEntry entry in manifest.Files)
        {
            byte[] bytes = File.ReadAllBytes(info.FilePath(entry.RelativePath));
            Assert.Equal(bytes.Length, entry.ByteCount);
            Assert.Equal(Crc32C.Compute(bytes), entry.Crc32C);
        }
        Assert.Equal(301_234, manifest.Files[0].ByteCount);
        Assert.Equal(["manifest.json", "model.safetensors", "optimizer", "recipe.yaml", "trainer_state.json"],
            Directory.GetFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Single(Directory.GetDirectories(_store.DirectoryPath)); // the temp folder is gone

        TrainerState state = info.ReadTrainerState();
        Assert.Equal(State(100).ToJson(), state.ToJson());
        Assert.Equal(new byte[] { 1, 2, 3, 250 }, state.RngStates["cpu"]);
        Assert.Equal(1234, (int)state.DataPosition["example_index"]!);
        Assert.Equal(1L << 33, state.TokensSeen);
        Assert.Contains("\"cpu\": \"AQID+g==\"", state.ToJson()); // base64 of 01 02 03 FA
    }

    [Fact]
    public void FlippedByteInAnyFileIsDetectedNamedAndThePreviousCheckpointOffered()
    {
        string previous = WriteCheckpoint(10);
        string latest = WriteCheckpoint(20);
        string[] files = Directory.GetFiles(latest, "*", SearchOption.AllDirectories);
        Assert.Equal(6, files.Length);
        foreach (string file in files)
        {
            string relative = Path.GetRelativePath(latest, file).Replace('\\', '/');
            byte[] original = File.ReadAllBytes(file);
            foreach (int position in new[] { 0, original.Length / 2, original.Length - 1 })
            {
                byte[] damaged = (byte[])original.Clone();
                damaged[position] ^= 0x04;
                File.WriteAllBytes(file, damaged);
                string message = Assert.Throws<UserErrorException>(() => _store.LoadLatest()).Message;
                Assert.Contains($"Checkpoint {latest} is damaged: ", message);
                Assert.Contains(relative, message);
                Assert.EndsWith($"resume from the previous checkpoint with resume={previous} --discard-newer (which deletes it), or repair it.", message);
                Assert.Equal(10, _store.FindLatestValid()!.Step);
            }
            File.WriteAllBytes(file, original);
        }
        Assert.Equal(20, _store.LoadLatest()!.Step);
    }

    [Fact]
    public void AFileVerifiedByItsPartsIsCheckedForSizeHereAndNotReadBack()
    {
        // the optimizer states (tens of GB) carry CRCs per extent, checked as a resume reads them; verifying the
        // checkpoint checks their length and that the file holding their CRCs is listed, and does not read them
        CheckpointWriter writer = _store.BeginWrite(3);
        File.WriteAllText(writer.PathFor("optimizer/optimizer-state.json"), "{}");
        File.WriteAllBytes(writer.PathForVerifiedBy("optimizer/optimizer-state.bin", "optimizer/optimizer-state.json"), Pattern(8192, 1));
        writer.WriteTrainerState(State(3));
        string folder = writer.Commit(keepLast: 2);
        var checkpoint = new CheckpointInfo(3, folder);
        CheckpointManifest manifest = _store.Verify(checkpoint);
        CheckpointFileEntry states = manifest.Files.Single(f => f.RelativePath == "optimizer/optimizer-state.bin");
        Assert.Equal(("optimizer/optimizer-state.json", 8192L), (states.VerifiedBy, states.ByteCount));
        string bin = Path.Combine(folder, "optimizer", "optimizer-state.bin");
        byte[] flipped = File.ReadAllBytes(bin);
        flipped[100] ^= 1;
        File.WriteAllBytes(bin, flipped);
        _store.Verify(checkpoint); // contents are the resume's to check, extent by extent
        File.WriteAllBytes(bin, flipped[..4096]);
        var error = Assert.Throws<UserErrorException>(() => _store.Verify(checkpoint));
        Assert.Contains("file optimizer/optimizer-state.bin has 4096 bytes but the manifest says 8192", error.Message);
    }

    [Fact]
    public void TruncatedOrMissingFilesAreNamed()
    {
        string folder = WriteCheckpoint(5);
        string weights = Path.Combine(folder, "model.safetensors");
        byte[] original = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, original[..^1]);
        string message = Assert.Throws<UserErrorException>(() => _store.LoadLatest()).Message;
        Assert.Contains("file model.safetensors has 301233 bytes but the manifest says 301234", message);
        Assert.EndsWith("there is no earlier checkpoint, so repair it or start a new run in another output_dir.", message);

        File.WriteAllBytes(weights, original);
        File.Delete(Path.Combine(folder, "optimizer", "sub_group_001.bin"));
        Assert.Contains("file optimizer/sub_group_001.bin is missing", Assert.Throws<UserErrorException>(() => _store.LoadLatest()).Message);
    }

    [Fact]
    public void KilledWriterLeavesThePreviousCheckpointLoadableAndItsTempFolderIsRemoved()
    {
        WriteCheckpoint(10);
        // What a kill -9 in the middle of step 20's write leaves: a temp folder with partial files and an unheld lock.
        string stale = Path.Combine(_store.DirectoryPath, "step_20.tmp-4242");
        Directory.CreateDirectory(stale);
        File.WriteAllBytes(Path.Combine(stale, "model.safetensors"), Pattern(1000, 1));
        File.WriteAllBytes(Path.Combine(stale, CheckpointWriter.LockFileName), []);
        // And a half-deleted checkpoint from an interrupted prune.
        Directory.CreateDirectory(Path.Combine(_store.DirectoryPath, "step_2.tmp-4242-deleting"));

        CheckpointInfo latest = _store.LoadLatest()!;
        Assert.Equal(10, latest.Step);
        Assert.Equal(10, latest.ReadTrainerState().Step);
        Assert.False(Directory.Exists(stale));
        Assert.Equal(["step_10"], Directory.GetDirectories(_store.DirectoryPath).Select(Path.GetFileName));
    }

    [Fact]
    public void LiveWritersTempFolderIsNotRemoved()
    {
        WriteCheckpoint(10);
        using CheckpointWriter writer = _store.BeginWrite(20);
        writer.WriteText("recipe.yaml", "x: 1\n");
        Assert.Equal([10L], _store.List().Select(c => c.Step));
        Assert.True(Directory.Exists(writer.TempDirectory));
        writer.Commit(keepLast: 5);
        Assert.Equal([10L, 20L], _store.List().Select(c => c.Step));
    }

    [Fact]
    public void NewestFolderWithoutManifestIsReportedNotSkipped()
    {
        // issue 21: a deleted manifest.json in the newest checkpoint made resume fall back to the previous one
        // silently and later replace the newer folder
        string previous = WriteCheckpoint(10);
        string newest = WriteCheckpoint(30);
        File.Delete(Path.Combine(newest, CheckpointManifest.FileName));
        Assert.Equal([10L], _store.List().Select(c => c.Step));
        Assert.Equal([10L, 30L], _store.ListAll().Select(c => c.Step));
        string message = Assert.Throws<UserErrorException>(() => _store.LoadLatest()).Message;
        Assert.Equal($"Checkpoint {newest} is damaged: manifest.json is missing; resume from the previous checkpoint with resume={previous} --discard-newer (which deletes it), or repair it.", message);
        _store.Prune(keepLast: 1);
        Assert.True(Directory.Exists(newest), "pruning must not delete a damaged checkpoint");
        Assert.Equal([30L], _store.Newer(10).Select(c => c.Step));
    }

    [Fact]
    public void AFifoOrAnOversizedFileInACheckpointIsDamageNotAHang()
    {
        // a listed file of 0 bytes passes the size check, so a FIFO in its place was opened for its CRC (and blocked)
        CheckpointWriter writer = _store.BeginWrite(7);
        writer.WriteText("notes.txt", "");
        writer.WriteTrainerState(State(7));
        string folder = writer.Commit(keepLast: 2);
        var checkpoint = new CheckpointInfo(7, folder);
        _store.Verify(checkpoint);
        HostileFiles.Fifo(Path.Combine(folder, "notes.txt"));
        Assert.StartsWith($"Checkpoint {folder} is damaged: file notes.txt is a FIFO (named pipe), not a regular file; ",
            HostileFiles.Refusal(() => _store.Verify(checkpoint)));

        string manifest = Path.Combine(folder, CheckpointManifest.FileName);
        foreach (Action plant in new Action[] { () => HostileFiles.Fifo(manifest), () => HostileFiles.Oversized(manifest, (64L << 20) + 1) })
        {
            plant();
            Assert.StartsWith($"Checkpoint {folder} is damaged: manifest.json is not a regular file of at most 67108864 bytes; ",
                HostileFiles.Refusal(() => _store.Verify(checkpoint)));
        }
    }

    [Fact]
    public void AStoreListingWhileAWriterStartsNeverDeletesItsTempFolder()
    {
        // a 2-rank run lost step_2.tmp-PID/model.safetensors.tmp: a store listed the folder between the writer's
        // mkdir and its lock, took it for a dead writer's and deleted it (the test polling for checkpoints, or a rank)
        using var stop = new CancellationTokenSource();
        var lister = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
                _store.ListAll();
        });
        lister.Start();
        try
        {
            for (long step = 1; step <= 300; step++)
            {
                using CheckpointWriter writer = _store.BeginWrite(step);
                File.WriteAllBytes(writer.PathFor("weights.bin"), [1, 2, 3]);
                writer.WriteTrainerState(State(step));
                writer.Commit(keepLast: 1);
            }
        }
        finally
        {
            stop.Cancel();
            lister.Join();
        }
        Assert.Equal([300L], _store.List().Select(c => c.Step));
    }

    [Fact]
    public void PruneKeepsTheNewestKeepLast()
    {
        for (long step = 1; step <= 4; step++)
            WriteCheckpoint(step * 100, keepLast: 2);
        Assert.Equal([300L, 400L], _store.List().Select(c => c.Step));
        Assert.Equal(2, Directory.GetDirectories(_store.DirectoryPath).Length);
    }

    [Fact]
    public void ResumingFromAnOlderCheckpointDiscardsTheNewerOnes()
    {
        foreach (long step in new long[] { 10, 20, 30 })
            WriteCheckpoint(step);
        File.WriteAllText(Path.Combine(_store.DirectoryPath, "step_30", "recipe.yaml"), "damaged\n");
        CheckpointInfo valid = _store.FindLatestValid()!;
        Assert.Equal(20, valid.Step);
        Assert.Equal(1, _store.DiscardAfter(valid.Step));
        Assert.Equal([10L, 20L], _store.List().Select(c => c.Step));
        Assert.Equal(20, _store.LoadLatest()!.Step);
    }

    [Fact]
    public void SavingTheSameStepAgainReplacesIt()
    {
        WriteCheckpoint(7);
        using (CheckpointWriter writer = _store.BeginWrite(7))
        {
            writer.WriteText("recipe.yaml", "second\n");
            writer.Commit(keepLast: 3);
        }
        CheckpointInfo only = Assert.Single(_store.List());
        Assert.Equal("recipe.yaml", Assert.Single(_store.Verify(only).Files).RelativePath);
        Assert.Equal("second\n", File.ReadAllText(only.FilePath("recipe.yaml")));
    }

    [Fact]
    public void DisposingWithoutCommitRemovesTheTempFolder()
    {
        string temp;
        using (CheckpointWriter writer = _store.BeginWrite(3))
        {
            temp = writer.TempDirectory;
            writer.WriteText("recipe.yaml", "x\n");
        }
        Assert.False(Directory.Exists(temp));
        Assert.Empty(_store.List());
        Assert.Null(_store.LoadLatest());
    }

    [Fact]
    public void OpenByPathVerifiesAndRejectsNonCheckpoints()
    {
        string folder = WriteCheckpoint(40);
        Assert.Equal(40, CheckpointStore.Open(folder).Step);
        Assert.Contains("is not a checkpoint folder", Assert.Throws<UserErrorException>(() => CheckpointStore.Open(_root)).Message);
    }

    [Fact]
    public void ResolvedRecipeRoundTripsThroughTheCheckpoint()
    {
        var recipe = FineTune.Trainer.Recipes.Recipe.Parse(
            $"model: {{config: {{vocab_size: 256, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2}}}}\n" +
            $"dataset: {{format: synthetic, seq_len: 16}}\noutput_dir: {_root}\n", "r.yaml", ["optimizer.lr=3e-4"]);
        using (CheckpointWriter writer = _store.BeginWrite(9))
        {
            writer.WriteRecipe(recipe);
            writer.Commit(keepLast: 1);
        }
        var restored = _store.LoadLatest()!.ReadRecipe();
        Assert.Equal(recipe.ToYaml(), restored.ToYaml());
        Assert.Equal(3e-4, restored.Optimizer.Lr);
    }

    [Fact]
    public void InvalidFileNamesAndOpenStreamsAreBugs()
    {
        using CheckpointWriter writer = _store.BeginWrite(1);
        Assert.Throws<ArgumentException>(() => writer.PathFor("../escape.bin"));
        Assert.Throws<ArgumentException>(() => writer.PathFor("/abs.bin"));
        Assert.Throws<ArgumentException>(() => writer.PathFor(CheckpointManifest.FileName));
        writer.WriteText("a.txt", "a");
        Assert.Throws<ArgumentException>(() => writer.WriteText("a.txt", "b"));
        Stream open = writer.CreateFile("b.bin");
        Assert.Throws<InvalidOperationException>(() => writer.Commit(1));
        open.Dispose();
    }

    [Fact]
    public void TrainerStateRejectsForeignOrNewerFiles()
    {
        string json = State(1).ToJson();
        Assert.Contains("is not a FineTune trainer state", Assert.Throws<UserErrorException>(
            () => TrainerState.FromJson(json.Replace(TrainerState.ExpectedMagic, "other"), "s.json")).Message);
        Assert.Contains("version 2", Assert.Throws<UserErrorException>(
            () => TrainerState.FromJson(json.Replace("\"version\": 1", "\"version\": 2"), "s.json")).Message);
        Assert.Contains("s.json is not a valid trainer state", Assert.Throws<UserErrorException>(
            () => TrainerState.FromJson("{\"step\": \"x\"}", "s.json")).Message);
        Assert.Equal(json, TrainerState.FromJson(json, "s.json").ToJson());
        Assert.Equal(Encoding.UTF8.GetBytes(json), Encoding.UTF8.GetBytes(TrainerState.FromJson(json, "s.json").ToJson()));
    }
}
