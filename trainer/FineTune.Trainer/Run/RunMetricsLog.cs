using System.Text;
using System.Text.Json;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>
/// &lt;output_dir&gt;/metrics.jsonl: one JSON object per optimizer step ({"step", "loss", "lr", "grad_norm", "tokens",
/// "seconds" and its parts), appended and flushed as each step ends, doubles written shortest-round-trip so they read back
/// bitwise. A resumed run appends the steps after its checkpoint again; readers take the last line per step
/// (<see cref="ReadLosses"/>). A non-finite value is written as a string ("NaN", "Infinity"). This is the file the kill -9 tests compare; TensorBoard holds float32 copies.
/// </summary>
public sealed class RunMetricsLog : IDisposable
{
    public const string FileName = "metrics.jsonl";

    /// <summary>&lt;output_dir&gt;/eval.jsonl: {"step", "eval_loss"} per evaluation (a separate file: readers of metrics.jsonl expect a loss per line).</summary>
    public const string EvalFileName = "eval.jsonl";
    private readonly FileStream _stream;

    public RunMetricsLog(string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        FilePath = Path.Combine(outputDirectory, FileName);
        _stream = new FileStream(FilePath, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    public string FilePath { get; }

    public void Append(StepMetrics metrics)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", metrics.Step);
            WriteNumber(json, "loss", metrics.Loss);
            WriteNumber(json, "lr", metrics.LearningRate);
            if (!double.IsNaN(metrics.GradientNorm))
                WriteNumber(json, "grad_norm", metrics.GradientNorm);
            json.WriteNumber("tokens", metrics.TokenCount);
            json.WriteNumber("seconds", Math.Round(metrics.Seconds, 6));
            json.WriteNumber("compute_seconds", Math.Round(metrics.ComputeSeconds, 6));
            json.WriteNumber("read_wait_seconds", Math.Round(metrics.ReadWaitSeconds, 6));
            json.WriteNumber("write_wait_seconds", Math.Round(metrics.WriteWaitSeconds, 6));
            json.WriteNumber("optimizer_seconds", Math.Round(metrics.OptimizerSeconds, 6));
            json.WriteNumber("optimizer_wait_seconds", Math.Round(metrics.OptimizerWaitSeconds, 6));
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        _stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        _stream.Flush();
    }

    /// <summary>Appends one evaluation to eval.jsonl beside metrics.jsonl.</summary>
    public void AppendEval(long step, double evalLoss)
    {
        if (!double.IsFinite(evalLoss))
            return; // an eval set without a trained token has no loss to draw
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", step);
            json.WriteNumber("eval_loss", evalLoss);
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        using var stream = new FileStream(Path.Combine(Path.GetDirectoryName(FilePath)!, EvalFileName), FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>JSON has no NaN or infinity: those are written as the strings "NaN", "Infinity" and "-Infinity" (what Python's float() reads).</summary>
    private static void WriteNumber(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value))
            json.WriteNumber(name, value);
        else
            json.WriteString(name, double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
    }

    /// <summary>Loss per step, the last line of each step winning (a resumed run re-logs the steps it repeats).</summary>
    public static SortedDictionary<long, double> ReadLosses(string path)
    {
        var losses = new SortedDictionary<long, double>();
        if (!File.Exists(path))
            return losses;
        foreach (string line in File.ReadAllLines(path, Encoding.UTF8))
        {
            if (line.Length == 0)
                continue;
            try
            {
                using JsonDocument document = JsonDocument.Parse(line);
                JsonElement loss = document.RootElement.GetProperty("loss");
                losses[document.RootElement.GetProperty("step").GetInt64()] = loss.ValueKind == JsonValueKind.String
                    ? double.Parse(loss.GetString()!, System.Globalization.CultureInfo.InvariantCulture)
                    : loss.GetDouble();
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
            {
                // A line cut short by a kill: its step is logged again by the resumed run.
            }
        }
        return losses;
    }

    public void Dispose() => _stream.Dispose();
}
