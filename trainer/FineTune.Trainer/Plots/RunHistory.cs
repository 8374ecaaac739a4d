using System.Text;
using System.Text.Json;
using FineTune.Trainer.Runs;

namespace FineTune.Trainer.Plots;

/// <summary>
/// The curves of one run folder, read back from its logs: train loss and learning rate per step (metrics.jsonl)
/// and eval loss per evaluated step (eval.jsonl, when the run evaluated). The last line of a step wins, as a resumed
/// run logs the steps after its checkpoint again; a line cut short by a kill is skipped.
/// </summary>
public sealed record RunHistory(string Name, IReadOnlyList<(long Step, double Loss, double LearningRate)> Train, IReadOnlyList<(long Step, double Loss)> Eval)
{
    public static RunHistory Read(string runFolder)
    {
        string metrics = Path.Combine(runFolder, RunMetricsLog.FileName);
        if (!Directory.Exists(runFolder))
            throw new UserErrorException($"{runFolder}: no such run folder; give the output_dir of a run.");
        if (!File.Exists(metrics))
            throw new UserErrorException($"{runFolder} holds no {RunMetricsLog.FileName}; give the output_dir of a run that trained at least one step.");
        var train = new SortedDictionary<long, (double, double)>();
        foreach (JsonElement line in Lines(metrics))
        {
            if (line.TryGetProperty("step", out JsonElement step) && line.TryGetProperty("loss", out JsonElement loss) && line.TryGetProperty("lr", out JsonElement lr))
                train[step.GetInt64()] = (loss.GetDouble(), lr.GetDouble());
        }
        var eval = new SortedDictionary<long, double>();
        string evalFile = Path.Combine(runFolder, RunMetricsLog.EvalFileName);
        if (File.Exists(evalFile))
        {
            foreach (JsonElement line in Lines(evalFile))
            {
                if (line.TryGetProperty("step", out JsonElement step) && line.TryGetProperty("eval_loss", out JsonElement loss))
                    eval[step.GetInt64()] = loss.GetDouble();
            }
        }
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runFolder)));
        return new RunHistory(name, train.Select(p => (p.Key, p.Value.Item1, p.Value.Item2)).ToList(), eval.Select(p => (p.Key, p.Value)).ToList());
    }

    private static IEnumerable<JsonElement> Lines(string path)
    {
        foreach (string line in File.ReadAllLines(path, Encoding.UTF8))
        {
            if (line.Length == 0)
                continue;
            JsonElement element;
            try
            {
                using JsonDocument document = JsonDocument.Parse(line);
                element = document.RootElement.Clone();
            }
            catch (JsonException)
            {
                continue; // a line cut short by a kill; the resumed run logs its step again
            }
            yield return element;
        }
    }
}
