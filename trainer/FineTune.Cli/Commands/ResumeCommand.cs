using System.CommandLine;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune resume RUN [key.path=value ...] [--discard-newer]`: continues the run in RUN from its newest
/// checkpoint (or, when RUN is one of its checkpoints/step_N folders, from that one), with the recipe stored in
/// that checkpoint, then the overrides. Rule: a run folder is one unit, so resume continues RUN in place: its
/// checkpoints, metrics.jsonl and TensorBoard files stay together, and output_dir= / checkpoint.dir= overrides
/// are refused (to branch into a new folder: finetune run RECIPE output_dir=NEW resume=RUN/checkpoints/step_N).
/// Each wrong RUN (missing, a file, a recipe, a folder that is no run, a run without a checkpoint) has its own sentence.
/// </summary>
internal static class ResumeCommand
{
    public static Command Create()
    {
        var runDirectory = new Argument<string>("RUN") { Description = "The output_dir of the run to continue (holds checkpoints/), or one of its checkpoints/step_N folders." };
        var overrides = new Argument<string[]>("OVERRIDES") { Description = "key.path=value pairs, e.g. training.max_steps=400 to train longer.", Arity = ArgumentArity.ZeroOrMore };
        Option<bool> discardNewer = RunCommand.DiscardNewerOption();
        Option<int> nproc = RunCommand.NprocOption();
        Option<int> timeout = RunCommand.TimeoutOption();
        var command = new Command("resume", "Continue a run in its folder from its newest checkpoint, or from a step_N folder of it (verified against its manifest).");
        command.Arguments.Add(runDirectory);
        command.Arguments.Add(overrides);
        command.Options.Add(discardNewer);
        command.Options.Add(nproc);
        command.Options.Add(timeout);
        command.SetAction(parsed =>
        {
            string given = parsed.GetValue(runDirectory)!;
            string[] extra = parsed.GetValue(overrides) ?? [];
            foreach (string key in new[] { "output_dir", "checkpoint.dir" })
                if (extra.Any(o => o.Split('=')[0].Trim() == key))
                    throw new UserErrorException($"resume continues the run in {given}, so {key} cannot be overridden; to continue from one of its checkpoints in a new folder, use finetune run RECIPE output_dir=NEW resume={Path.Combine(given, "checkpoints", "step_N")}.");
            var (runFolder, checkpointsFolder, checkpoint, resume) = Resolve(given);
            if (parsed.GetValue(nproc) is int count and not 1)
            {
                // any number of ranks resumes any checkpoint: the optimizer states re-partition
                RunDirectories.RefuseLinks(runFolder); // before the launcher creates logs/ and writes rank-R.log
                string[] rankArguments = parsed.GetValue(discardNewer) ? ["resume", given, .. extra, "--discard-newer"] : ["resume", given, .. extra];
                return Launch.LocalLauncher.Run(rankArguments, count, Path.Combine(runFolder, RunDirectories.LogsFolderName), Launch.LocalLauncher.Timeout(parsed.GetValue(timeout)));
            }
            var store = new CheckpointStore(checkpointsFolder);
            store.VerifyFile(checkpoint, CheckpointWriter.RecipeFileName);
            string[] all = [$"output_dir={runFolder}", $"checkpoint.dir={checkpointsFolder}", $"resume={resume}", .. extra];
            string recipePath = checkpoint.FilePath(CheckpointWriter.RecipeFileName);
            try
            {
                checkpoint.ReadRecipe();
            }
            catch (UserErrorException e)
            {
                // recipe.yaml passed its CRC, so FineTune wrote it: when it does not parse, the checkpoint (or the release) is the problem, not the user's recipe
                throw new UserErrorException(store.Damaged(checkpoint, $"its {CheckpointWriter.RecipeFileName} cannot be read ({e.Message.TrimEnd('.')})").Message, e);
            }
            // the stored recipe parses; what the checks say now (a dataset moved, a bad override) is the user's to fix
            return RunCommand.Execute(Recipe.Load(recipePath, all), parsed.GetValue(discardNewer));
        });
        return command;
    }

    /// <summary>(run folder, its checkpoints folder, the checkpoint whose recipe is read, the resume= value).</summary>
    private static (string Run, string Checkpoints, CheckpointInfo Checkpoint, string Resume) Resolve(string given)
    {
        if (given.Trim().Length == 0)
            throw new UserErrorException("resume was given an empty RUN; give the output_dir of a run (the folder holding checkpoints/).");
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(given));
        if (File.Exists(full))
        {
            throw new UserErrorException(full.EndsWith(".yaml", StringComparison.Ordinal) || full.EndsWith(".yml", StringComparison.Ordinal)
                ? $"{given} is a recipe file, but resume takes a run folder; continue that recipe's run with finetune run {given} resume=true, or give its output_dir."
                : $"{given} is a file, not a run folder; give the output_dir of a run (the folder holding checkpoints/).");
        }
        if (!Directory.Exists(full))
            throw new UserErrorException($"{given} does not exist; give the output_dir of a run (the folder holding checkpoints/) or one of its checkpoints/step_N folders.");
        if (File.Exists(Path.Combine(full, CheckpointManifest.FileName)) || File.Exists(Path.Combine(full, TrainerState.FileName)))
        {
            // a checkpoint folder: <run>/checkpoints/step_N (checkpoint.dir elsewhere: the folder above it stands for the run)
            string checkpoints = Path.GetDirectoryName(full)!;
            string run = Path.GetFileName(checkpoints) == "checkpoints" ? Path.GetDirectoryName(checkpoints)! : checkpoints;
            CheckpointInfo opened = new CheckpointStore(checkpoints).ListAll().FirstOrDefault(c => c.DirectoryPath == full)
                ?? throw new UserErrorException($"{given} holds checkpoint files but is not named step_<N>; resume from its run folder, or rename it back.");
            return (run, checkpoints, opened, full);
        }
        string folder = Path.Combine(full, "checkpoints");
        if (!Directory.Exists(folder))
            throw new UserErrorException($"{given} has no checkpoints/ folder, so it is not a FineTune run folder; give the output_dir of a run, or start one with finetune run RECIPE.");
        CheckpointInfo latest = new CheckpointStore(folder).ListAll().LastOrDefault()
            ?? throw new UserErrorException($"{given} is a run folder without a checkpoint yet (checkpoints/ is empty); continue it with finetune run RECIPE output_dir={given} resume=true, which starts it again.");
        return (full, folder, latest, "latest");
    }
}
