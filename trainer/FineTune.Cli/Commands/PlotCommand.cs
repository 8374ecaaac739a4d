using System.CommandLine;
using System.Globalization;
using FineTune.Trainer.Plots;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune plot RUN... [-o out.png]`: draws the train loss, eval loss and learning rate of one or several runs
/// (their output_dir, read from metrics.jsonl and eval.jsonl) side by side in one PNG, and prints each run's loss
/// curve as a sparkline. Default output: RUN/loss.png for one run, ./loss.png for several.
/// </summary>
internal static class PlotCommand
{
    public static Command Create()
    {
        var runs = new Argument<string[]>("RUN") { Description = "Run folders (output_dir), one panel each.", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string?>("--output", "-o") { Description = "PNG to write (default: RUN/loss.png for one run, ./loss.png for several)." };
        var command = new Command("plot", "Draw the loss and learning-rate curves of one or several runs side by side into a PNG.");
        command.Arguments.Add(runs);
        command.Options.Add(output);
        command.SetAction(parsed =>
        {
            string[] folders = parsed.GetValue(runs)!;
            List<RunHistory> histories = folders.Select(RunHistory.Read).ToList();
            string path = parsed.GetValue(output) ?? (folders.Length == 1 ? Path.Combine(folders[0], LossPlot.FileName) : LossPlot.FileName);
            if (!path.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                throw new UserErrorException($"-o {path}: the plot is a PNG; give a file name ending in .png.");
            if (parsed.GetValue(output) is null && folders.Length == 1)
                FineTune.Trainer.Runs.RunDirectories.RefuseLink(path); // RUN/loss.png, as a run draws it; an -o the user names is theirs
            foreach (RunHistory run in histories)
            {
                if (run.Train.Count == 0)
                    throw new UserErrorException($"{run.Name}: metrics.jsonl holds no complete step; plot a run that trained at least one step.");
                string eval = run.Eval.Count > 0 ? string.Create(CultureInfo.InvariantCulture, $", eval {run.Eval[^1].Loss:0.0000} at step {run.Eval[^1].Step}") : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{run.Name}: train loss {Sparkline.Render(run.Train.Select(p => p.Loss).ToList())} {run.Train[0].Loss:0.0000} -> {run.Train[^1].Loss:0.0000} ({run.Train.Count} steps{eval})"));
            }
            LossPlot.Save(histories, path);
            Console.WriteLine($"wrote {path}");
            return ExitCodes.Success;
        });
        return command;
    }
}
