using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using FineTune.Trainer.TensorBoard;
using Xunit;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// Nothing lost (issues 21 and 22): a fresh run never deletes an earlier run's logs; a resume to an older step keeps
/// the newer checkpoints unless --discard-newer; a deleted manifest in the newest checkpoint is reported, not
/// skipped; resume continues a run in place (output_dir overrides refused) and accepts a step_N folder; each wrong
/// resume target has its own sentence; a failed start leaves no empty run folder behind.
/// </summary>
public sealed class RunFolderRulesTests
{
    [Fact]
    public void AFreshRunKeepsAnEarlierRunsLogsAndRefusesTheFolder()
    {
        using var tiny = new TinyRunRecipe();
        // what a run that crashed before its first checkpoint leaves: losses and TensorBoard events, no checkpoint
        Directory.CreateDirectory(TrainingMetricsLogger.DirectoryFor(tiny.RunDirectory));
        string metrics = Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName);
        string events = Path.Combine(TrainingMetricsLogger.DirectoryFor(tiny.RunDirectory), "events.out.tfevents.1.host");
        File.WriteAllText(metrics, "{\"step\": 1, \"loss\": 5.5}\n");
        File.WriteAllText(events, "x");

        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2");

        Assert.Equal(2, code);
        Assert.Equal($"error: output_dir {tiny.RunDirectory} holds an earlier run's metrics.jsonl and tensorboard/ event files, which a new run would mix with its own; choose a new output_dir, or continue that run with resume=true.", error.Trim());
        Assert.Equal("{\"step\": 1, \"loss\": 5.5}\n", File.ReadAllText(metrics));
        Assert.True(File.Exists(events));
    }

    [Fact]
    public void ResumeToAnOlderStepKeepsTheNewerCheckpointsUnlessDiscardNewer()
    {
        using var tiny = new TinyRunRecipe();
        Assert.Equal(0, CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4").ExitCode);
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        CheckpointInfo older = store.List()[0];

        var (code, _, error) = CliRunner.Run("resume", older.DirectoryPath, "training.max_steps=4");
        Assert.Equal(2, code);
        Assert.Contains("holds 1 checkpoint(s) newer than", error);
        Assert.Contains("(step_4)", error);
        Assert.Equal([2L, 4L], store.List().Select(c => c.Step));

        var (discardCode, output, discardError) = CliRunner.Run("resume", older.DirectoryPath, "training.max_steps=4", "--discard-newer");
        Assert.True(discardCode == 0, discardError);
        Assert.Contains($"resuming from {older.DirectoryPath} (step 2); --discard-newer deleted 1 newer checkpoint(s)", output);
        Assert.Equal([2L, 4L], store.List().Select(c => c.Step)); // step 4 trained again
    }

    [Fact]
    public void ADeletedManifestInTheNewestCheckpointIsReportedAndTheFolderKept()
    {
        using var tiny = new TinyRunRecipe();
        Assert.Equal(0, CliRunner.Run("run", tiny.RecipePath, "training.max_steps=4").ExitCode);
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        CheckpointInfo previous = store.List()[0], newest = store.List()[1];
        File.Delete(newest.FilePath(CheckpointManifest.FileName));

        foreach (string[] args in new[] { new[] { "resume", tiny.RunDirectory }, ["run", tiny.RecipePath, "training.max_steps=4", "resume=true"] })
        {
            var (code, _, error) = CliRunner.Run(args);
            Assert.Equal(2, code);
            Assert.Equal($"error: Checkpoint {newest.DirectoryPath} is damaged: manifest.json is missing; resume from the previous checkpoint with resume={previous.DirectoryPath} --discard-newer (which deletes it), or repair it.", error.Trim());
        }
        // falling back silently would then have replaced it; it is still there, untouched
        Assert.True(File.Exists(newest.FilePath(TrainerState.FileName)));
    }

    [Fact]
    public void ADamagedRecipeInACheckpointIsReportedAsCheckpointDamage()
    {
        using var tiny = new TinyRunRecipe();
        Assert.Equal(0, CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2").ExitCode);
        CheckpointInfo only = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints")).List().Single();
        File.AppendAllText(only.FilePath(CheckpointWriter.RecipeFileName), "training: [\n");

        var (code, _, error) = CliRunner.Run("resume", tiny.RunDirectory);

        Assert.Equal(2, code);
        Assert.StartsWith($"error: Checkpoint {only.DirectoryPath} is damaged: file recipe.yaml", error.Trim());
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void ResumeContinuesTheRunInPlaceAndRefusesAnotherOutputDir()
    {
        using var tiny = new TinyRunRecipe();
        Assert.Equal(0, CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2").ExitCode);
        string other = Path.Combine(tiny.OutputDirectory, "other");

        var (code, _, error) = CliRunner.Run("resume", tiny.RunDirectory, $"output_dir={other}", "training.max_steps=4");

        Assert.Equal(2, code);
        Assert.Contains($"resume continues the run in {tiny.RunDirectory}, so output_dir cannot be overridden", error);
        Assert.False(Directory.Exists(other));
    }

    [Fact]
    public void EachWrongResumeTargetHasItsOwnSentence()
    {
        using var tiny = new TinyRunRecipe();
        string missing = Path.Combine(tiny.OutputDirectory, "missing");
        string notRun = Directory.CreateDirectory(Path.Combine(tiny.OutputDirectory, "plain")).FullName;
        string empty = Directory.CreateDirectory(Path.Combine(tiny.OutputDirectory, "empty", "checkpoints")).Parent!.FullName;
        var cases = new (string Target, string Sentence)[]
        {
            (missing, $"{missing} does not exist; give the output_dir of a run"),
            (tiny.RecipePath, $"{tiny.RecipePath} is a recipe file, but resume takes a run folder; continue that recipe's run with finetune run {tiny.RecipePath} resume=true"),
            (notRun, $"{notRun} has no checkpoints/ folder, so it is not a FineTune run folder"),
            (empty, $"{empty} is a run folder without a checkpoint yet"),
            ("", "resume was given an empty RUN"),
        };
        foreach (var (target, sentence) in cases)
        {
            var (code, _, error) = CliRunner.Run("resume", target);
            Assert.True(code == 2, $"{target}: {code} {error}");
            Assert.StartsWith($"error: {sentence}", error.Trim());
            Assert.Single(error.Trim().Split('\n'));
        }
    }

    [Fact]
    public void AUserErrorLeavesNoEmptyRunFolderBehind()
    {
        using var tiny = new TinyRunRecipe();
        string output = Path.Combine(tiny.OutputDirectory, "never");
        // eval.fraction that leaves no training record is only found once the data is read, after the folders exist
        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, $"output_dir={output}", $"offload.nvme_dir={output}/swap",
            "dataset.synthetic.count=1", "eval.every_steps=1", "eval.fraction=0.5");
        Assert.True(code == 2, error);
        Assert.False(Directory.Exists(output), $"{output} was left behind: {string.Join(", ", Directory.Exists(output) ? Directory.GetFileSystemEntries(output) : [])}");
    }

    [Fact]
    public void ASymlinkedMetricsFileIsRefusedAndItsTargetUntouched()
    {
        using var tiny = new TinyRunRecipe();
        string outside = Path.Combine(tiny.OutputDirectory, "precious.txt");
        File.WriteAllText(outside, "not a run's file\n");
        Directory.CreateDirectory(tiny.RunDirectory);
        string link = Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName);
        File.CreateSymbolicLink(link, outside);

        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2", "resume=true");

        Assert.Equal(2, code);
        Assert.Contains($"{link} is a symbolic link (to {outside}), and FineTune never writes or deletes through links out of output_dir", error);
        Assert.Equal("not a run's file\n", File.ReadAllText(outside));
    }

    [Theory]
    [InlineData(RunMetricsLog.EvalFileName)]
    [InlineData(FineTune.Trainer.Plots.LossPlot.FileName)]
    public void ASymlinkedEvalLogOrPlotIsRefusedAndItsTargetUntouched(string name)
    {
        // issue 21: only metrics.jsonl, tensorboard/, checkpoints/ and the lock were checked; eval.jsonl is appended
        // at every evaluation and loss.png drawn at the end, both through the link
        using var tiny = new TinyRunRecipe();
        string outside = Path.Combine(tiny.OutputDirectory, "precious.txt");
        File.WriteAllText(outside, "not a run's file\n");
        Directory.CreateDirectory(tiny.RunDirectory);
        string link = Path.Combine(tiny.RunDirectory, name);
        File.CreateSymbolicLink(link, outside);

        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2", "resume=true", "eval.every_steps=1", "eval.fraction=0.1");

        Assert.Equal(2, code);
        Assert.Equal($"error: {link} is a symbolic link (to {outside}), and FineTune never writes or deletes through links out of output_dir; remove the link.", error.Trim());
        Assert.Equal("not a run's file\n", File.ReadAllText(outside));
    }

    [Fact]
    public void ASymlinkedLogsFolderOrRankLogIsRefusedBeforeTheLauncherWritesIt()
    {
        // the --nproc launcher creates OUTPUT_DIR/logs and appends to logs/rank-R.log before any rank checks the folder
        using var tiny = new TinyRunRecipe();
        string elsewhere = Directory.CreateDirectory(Path.Combine(tiny.OutputDirectory, "elsewhere")).FullName;
        Directory.CreateDirectory(tiny.RunDirectory);
        string logs = Path.Combine(tiny.RunDirectory, RunDirectories.LogsFolderName);
        Directory.CreateSymbolicLink(logs, elsewhere);

        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2", "--nproc", "2");

        Assert.True(code == 2, $"exit {code} {error}");
        Assert.Equal($"error: {logs} is a symbolic link (to {elsewhere}), and FineTune never writes or deletes through links out of output_dir; remove the link.", error.Trim());
        Assert.Empty(Directory.GetFileSystemEntries(elsewhere));

        // resume --nproc into a real logs/ whose rank-0.log links out
        File.Delete(logs); // the link itself
        Assert.Equal(0, CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2").ExitCode);
        Directory.CreateDirectory(logs);
        string outside = Path.Combine(tiny.OutputDirectory, "precious.log");
        File.WriteAllText(outside, "not a run's file\n");
        string rankLog = Path.Combine(logs, "rank-0.log");
        File.CreateSymbolicLink(rankLog, outside);

        (code, _, error) = CliRunner.Run("resume", tiny.RunDirectory, "training.max_steps=4", "--nproc", "2");

        Assert.True(code == 2, $"exit {code} {error}");
        Assert.Equal($"error: {rankLog} is a symbolic link (to {outside}), and FineTune never writes or deletes through links out of output_dir; remove the link.", error.Trim());
        Assert.Equal("not a run's file\n", File.ReadAllText(outside));
    }

    [Fact]
    public void CheckpointsAreSavedByTimeToo()
    {
        // issue 22: with every_steps null a long run saved nothing until the end; every_minutes (default 30) saves by time
        using var tiny = new TinyRunRecipe();
        var (code, _, error) = CliRunner.Run("run", tiny.RecipePath, "training.max_steps=3", "checkpoint.every_steps=null", "checkpoint.every_minutes=0.00001", "checkpoint.keep_last=5");
        Assert.True(code == 0, error);
        Assert.Equal([1L, 2L, 3L], new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints")).List().Select(c => c.Step));
        var defaults = FineTune.Trainer.Recipes.Recipe.Parse("", "defaults.yaml", options: new() { Validate = false }).Checkpoint;
        Assert.Equal((500, 30.0), (defaults.EverySteps, defaults.EveryMinutes));
    }

    [Fact]
    public void ARunStartedWithRelativePathsResumesFromAnotherDirectory()
    {
        // issue 22: the checkpoint's recipe.yaml kept relative paths, so a resume from another directory failed
        using var tiny = new TinyRunRecipe();
        string previous = Directory.GetCurrentDirectory();
        string run = Path.Combine(tiny.OutputDirectory, "rel");
        try
        {
            Directory.SetCurrentDirectory(tiny.OutputDirectory);
            var (code, first, error) = CliRunner.Run("run", tiny.RecipePath, "output_dir=rel", "offload.nvme_dir=rel/swap", "training.max_steps=2");
            Assert.True(code == 0, error);
            // issue 22: the dataset summary at start, and one casing for tiers (it printed "optimizer states: Nvme")
            Assert.Contains("data: 200 records loaded (0 truncated, 0 split, 0 dropped) -> 200 samples;", first);
            Assert.Contains("steps per epoch; run: 2 steps; format: synthetic reverse task, compact prompt", first);
            Assert.Contains("; optimizer states: nvme\n", first);
            Directory.SetCurrentDirectory(Path.GetTempPath());
            var (resumeCode, output, resumeError) = CliRunner.Run("resume", run, "training.max_steps=4");
            Assert.True(resumeCode == 0, output + resumeError);
            Assert.Contains("finished 4/4 steps (resumed from step 2)", output);
            string stored = File.ReadAllText(Path.Combine(run, "checkpoints", "step_4", "recipe.yaml"));
            Assert.Contains($"nvme_dir: {run}/swap\n", stored);
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }
    }

    [Fact]
    public void EvalTakesACheckpointFolderOrARunFolder()
    {
        // issue 22: export accepted a step_N folder, eval did not
        using var tiny = new TinyRunRecipe();
        Assert.Equal(0, CliRunner.Run("run", tiny.RecipePath, "training.max_steps=2").ExitCode);
        foreach (string model in new[] { Path.Combine(tiny.RunDirectory, "checkpoints", "step_2"), tiny.RunDirectory })
        {
            var (code, output, error) = CliRunner.Run("eval", "--model", model, "--tokens", "97 98 99 100 101", "--device", "cpu");
            Assert.True(code == 0, $"{model}: {error}");
            Assert.Contains("perplexity: ", output);
        }
    }

    [Fact]
    public void BareFinetuneAndHelpPrintTheUsage()
    {
        foreach (string[] args in new[] { Array.Empty<string>(), ["help"], ["help", "resume"] })
        {
            var (code, output, error) = CliRunner.Run(args);
            Assert.True(code == 0, $"{string.Join(' ', args)}: {code} {error}");
            Assert.Contains("Usage:", output);
            Assert.Contains(args.Length == 2 ? "resume <RUN>" : "Commands:", output);
        }
    }
}
