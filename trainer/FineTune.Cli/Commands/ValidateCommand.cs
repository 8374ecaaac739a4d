using System.CommandLine;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune validate RECIPE [key.path=value ...]`: loads the recipe with its overrides, runs every check `run` runs
/// before it allocates (the recipe's, the plan against the budgets, checkpoint disk space) and prints the resolved recipe (all fields, defaults included) as YAML; a problem is one sentence and exit code 2.
/// `--reference` prints the Markdown reference of every field (docs/recipes.md) instead.
/// </summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string?>("recipe") { Description = "The recipe YAML file.", Arity = ArgumentArity.ZeroOrOne };
        var overrides = new Argument<string[]>("overrides")
        {
            Description = "Overrides as key.path=value (value parsed as YAML, e.g. training.batch_size=8 model.config=null).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var allowMissing = new Option<bool>("--allow-missing-inputs")
        {
            Description = "Accept model, tokenizer and dataset paths that do not exist yet (placeholders in shipped recipes).",
        };
        var reference = new Option<bool>("--reference") { Description = "Print the reference of every recipe field as Markdown and exit." };

        var command = new Command("validate", "Check a recipe and print it fully resolved (exit code 2 with the reason when it is wrong).");
        command.Arguments.Add(recipe);
        command.Arguments.Add(overrides);
        command.Options.Add(allowMissing);
        command.Options.Add(reference);
        command.SetAction(parsed =>
        {
            if (parsed.GetValue(reference))
            {
                Console.Out.Write(RecipeReference.Markdown());
                return ExitCodes.Success;
            }
            string path = parsed.GetValue(recipe)
                ?? throw new UserErrorException("Give the recipe to validate: finetune validate RECIPE [key.path=value ...].");
            var options = new RecipeLoadOptions { AllowMissingInputs = parsed.GetValue(allowMissing) };
            Recipe resolved = Recipe.Load(path, parsed.GetValue(overrides) ?? [], options);
            if (!options.AllowMissingInputs)
            {
                // what run checks next, before it allocates: the plan fits the budgets and the checkpoints fit the disk
                var store = new FineTune.Trainer.Checkpoints.CheckpointStore(resolved.Checkpoint.Dir);
                if (LoraSetup.ConfigOf(resolved) is not null) // LoRA plans with its own engine
                {
                    LoraRunPlan lora = LoraRunPlan.Create(resolved, LoraSetup.ModelConfigOf(resolved), RunPlan.MeasureRuntimeBaseline());
                    RunSpaceCheck.CheckCheckpoints(resolved, lora.CheckpointSpace(resolved, store.List().Count, resolved.Training.MaxSteps));
                }
                else
                {
                    RunPlan plan = RunPlan.Create(resolved, RunPlan.MeasureRuntimeBaseline(), resuming: resolved.Resume is not null);
                    RunSpaceCheck.CheckCheckpoints(resolved, plan, store, resolved.Training.MaxSteps);
                    if (resolved.Training.MaxSteps is long steps) // an epoch count needs the data read: run checks that one
                        RunDurationCheck.Check(resolved, plan, steps);
                }
            }
            Console.Out.Write($"# {path}: valid{(options.AllowMissingInputs ? " (missing inputs allowed)" : "")}; resolved recipe:\n");
            Console.Out.Write(resolved.ToYaml());
            return ExitCodes.Success;
        });
        return command;
    }
}
