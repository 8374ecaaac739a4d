using System.CommandLine;
using System.Runtime.InteropServices;
using FineTune.Cli.Launch;
using FineTune.Torch.Distributed;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using Spectre.Console;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune run RECIPE [key.path=value ...]`: resolves the recipe (file + overrides, validated) and trains it
/// (<see cref="TrainingRun"/>). `run RECIPE resume=true` continues from the newest checkpoint. Ctrl-C or SIGTERM
/// finishes the current step, saves a checkpoint and exits with 130 (the shell's code for SIGINT), so scripts can
/// tell an interrupted run from a finished one (0); a second Ctrl-C kills the process the usual way.
/// With `--nproc N` (or under torchrun, srun or any launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)
/// the process is one rank of a data-parallel run: it joins the c10d group, trains its shard of each global batch
/// with a ZeRO engine (<see cref="TrainingRun.Group"/>), and meets its peers at a barrier before it leaves.
/// </summary>
internal static class RunCommand
{
    public const int InterruptedExitCode = 130;

    public static Command Create()
    {
        var recipe = new Argument<string>("RECIPE") { Description = "Recipe file (.yaml); see recipes/ and docs/recipes.md." };
        var overrides = new Argument<string[]>("OVERRIDES") { Description = "key.path=value pairs that override the recipe, e.g. training.max_steps=50 resume=true.", Arity = ArgumentArity.ZeroOrMore };
        Option<bool> discardNewer = DiscardNewerOption();
        var command = new Command("run", "Train a recipe: data, model, offloaded engine, TensorBoard logs and checkpoints under output_dir. Ctrl-C or SIGTERM saves a checkpoint after the current step and exits with 130; exit 2 is a user error.");
        Option<int> nproc = NprocOption();
        Option<int> timeout = TimeoutOption();
        command.Arguments.Add(recipe);
        command.Arguments.Add(overrides);
        command.Options.Add(discardNewer);
        command.Options.Add(nproc);
        command.Options.Add(timeout);
        command.SetAction(parsed =>
        {
            string path = parsed.GetValue(recipe)!;
            string[] pairs = parsed.GetValue(overrides) ?? [];
            bool discard = parsed.GetValue(discardNewer);
            if (parsed.GetValue(nproc) is int count and not 1)
            {
                // Checked once here, so a bad recipe is one sentence, not one per rank; its output_dir holds the logs.
                Recipe checkedRecipe = Recipe.Load(path, pairs);
                RunDirectories.RefuseLinks(checkedRecipe); // before the launcher creates logs/ and writes rank-R.log
                string[] rankArguments = discard ? ["run", path, .. pairs, "--discard-newer"] : ["run", path, .. pairs];
                return LocalLauncher.Run(rankArguments, count, Path.Combine(checkedRecipe.OutputDir, RunDirectories.LogsFolderName), LocalLauncher.Timeout(parsed.GetValue(timeout)));
            }
            DistributedEnvironment env = DistributedEnvironment.FromProcess();
            return Execute(Recipe.Load(path, pairs, new RecipeLoadOptions { Rank = env.Rank }), discard);
        });
        return command;
    }

    /// <summary>`--nproc`, shared with resume.</summary>
    internal static Option<int> NprocOption() => new("--nproc")
    {
        Description = "Train with N local data-parallel ranks (as torchrun --nproc-per-node N does; ZeRO: each rank holds 1/N of the optimizer state, training.batch_size is the global batch); rank 0's output shows here, every rank's goes to OUTPUT_DIR/logs/rank-R.log.",
        DefaultValueFactory = _ => 1,
    };

    /// <summary>`--timeout`, shared with resume.</summary>
    internal static Option<int> TimeoutOption() => new("--timeout")
    {
        Description = "Seconds a rank waits for its peers (joining, each collective) before it fails and names the rank that stopped answering.",
        DefaultValueFactory = _ => (int)ProcessGroupOptions.DefaultTimeout.TotalSeconds,
    };

    /// <summary>`--discard-newer`, shared with resume: the only way a resume deletes checkpoints newer than the one it starts from.</summary>
    internal static Option<bool> DiscardNewerOption() => new("--discard-newer")
    {
        Description = "When resuming from a checkpoint older than the newest (resume=<step_N>, or past a damaged newest one), delete the newer ones; without it such a resume is refused.",
    };

    /// <summary>Runs a resolved recipe with the console's progress output and Ctrl-C / SIGTERM handling; returns the exit code.</summary>
    internal static int Execute(Recipe recipe, bool discardNewer = false)
    {
        DistributedEnvironment env = DistributedEnvironment.FromProcess();
        using ProcessGroup? group = env.IsDistributed ? env.JoinGroup() : null;
        using var cancel = new CancellationTokenSource();
        int signals = 0;
        void Stop(string what)
        {
            if (Interlocked.Increment(ref signals) == 1)
                Console.Error.WriteLine($"{Environment.NewLine}{what}: saving a checkpoint at the end of this step (again to abort without one)...");
            cancel.Cancel();
        }
        ConsoleCancelEventHandler onCancelKey = (_, e) =>
        {
            // The first Ctrl-C asks for a clean stop; a second one lets the runtime terminate the process, after saying so.
            e.Cancel = Volatile.Read(ref signals) == 0;
            if (!e.Cancel)
                Console.Error.WriteLine($"{Environment.NewLine}Ctrl-C again: aborting now without a checkpoint of this step; the last checkpoint in {recipe.Checkpoint.Dir} stays usable (finetune resume {recipe.OutputDir}).");
            Stop("Ctrl-C");
        };
        Console.CancelKeyPress += onCancelKey;
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            Stop("SIGTERM");
        });
        try
        {
            var progress = new RunProgress(Console.Out, LiveRenderer(), recipe.Logging.LogEverySteps, TerminalColumns);
            RunResult result = new TrainingRun(recipe, progress) { DiscardNewer = discardNewer, Group = group }.Execute(cancel.Token);
            foreach (string line in RunSummary.Lines(result))
                Console.WriteLine(line);
            group?.Barrier(); // no rank leaves while a peer may still read from it (rank 0 ends with the accuracy check and the plot)
            return result.Interrupted ? InterruptedExitCode : ExitCodes.Success;
        }
        finally
        {
            Console.CancelKeyPress -= onCancelKey;
        }
    }

    /// <summary>The live progress line on a terminal (Spectre.Console); null when stdout is redirected or FINETUNE_PLAIN_PROGRESS is set.</summary>
    private static Action<string>? LiveRenderer()
    {
        if (Console.IsOutputRedirected || Environment.GetEnvironmentVariable("FINETUNE_PLAIN_PROGRESS") is not null)
            return null;
        return line =>
        {
            Console.Write("\r\u001b[2K");
            AnsiConsole.Markup(Markup.Escape(line).Replace("loss ", "[bold]loss[/] ", StringComparison.Ordinal));
        };
    }

    /// <summary>Columns the live line may use: one less than the terminal's width, so it never wraps (which would leave a stale copy behind on every update).</summary>
    internal static int TerminalColumns()
    {
        try
        {
            int width = Console.WindowWidth;
            return width > 1 ? width - 1 : RunProgressLine.UnlimitedWidth;
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException or InvalidOperationException)
        {
            return 79;
        }
    }
}
