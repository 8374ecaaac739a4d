using System.CommandLine;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune resume RUN_DIR [key.path=value ...]`: continues the run whose output_dir is RUN_DIR from its newest
/// checkpoint, with the recipe stored in that checkpoint (output_dir set to RUN_DIR, resume=latest, then the
/// overrides). Same as `finetune run RECIPE resume=true` without needing the recipe file. Exit codes as `run`.
/// </summary>
internal static class ResumeCommand
{
    public static Command Create()
    {
        var runDirectory = new Argument<string>("RUN_DIR") { Description = "The output_dir of the run to continue (holds checkpoints/)." };
        var overrides = new Argument<string[]>("OVERRIDES") { Description = "key.path=value pairs, e.g. training.max_steps=400 to train longer.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("resume", "Continue a run from its newest checkpoint (verified against its manifest).");
        command.Arguments.Add(runDirectory);
        command.Arguments.Add(overrides);
        command.SetAction(parsed =>
        {
            string folder = parsed.GetValue(runDirectory)!;
            string checkpoints = Path.Combine(folder, "checkpoints");
            CheckpointInfo latest = new CheckpointStore(checkpoints).List().LastOrDefault()
                ?? throw new UserErrorException($"{folder} holds no checkpoint under checkpoints/; give the output_dir of a run that saved one, or start it with finetune run RECIPE.");
            string recipePath = latest.FilePath(CheckpointWriter.RecipeFileName);
            if (!File.Exists(recipePath))
                throw new UserErrorException($"Checkpoint {latest.DirectoryPath} has no {CheckpointWriter.RecipeFileName}; resume with finetune run RECIPE resume=true.");
            string[] all = [$"output_dir={folder}", $"checkpoint.dir={checkpoints}", "resume=latest", .. parsed.GetValue(overrides) ?? []];
            return RunCommand.Execute(Recipe.Load(recipePath, all));
        });
        return command;
    }
}
