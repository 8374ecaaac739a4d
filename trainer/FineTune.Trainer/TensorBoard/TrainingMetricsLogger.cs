using System.Text;
using FineTune.Trainer.Recipes;

namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// What the training loop talks to: scalars per step (new-style, DT_FLOAT, "scalars" metadata on every value),
/// the resolved recipe as a text summary, hparams, and the session end status, all in one event file under
/// <c>&lt;output_dir&gt;/tensorboard/</c>. Steps must increase per tag: TensorBoard's data server drops stored
/// points with step ≥ a new one (FORMATS.md §1.4), so a repeated step is a bug in the caller and throws.
/// Not thread-safe: call it from the training loop's thread.
/// </summary>
public sealed class TrainingMetricsLogger : IDisposable
{
    public const string RecipeTextName = "recipe";

    private readonly EventFileWriter _writer;
    private readonly Func<double> _clock;
    private readonly Dictionary<string, long> _lastStepByTag = new(StringComparer.Ordinal);

    /// <param name="logDirectory">Usually <see cref="DirectoryFor"/>(output_dir).</param>
    /// <param name="resumeStep">The step a resumed run continues from; writes SessionLog START there.</param>
    public TrainingMetricsLogger(string logDirectory, TimeSpan flushInterval, long? resumeStep = null, Func<double>? wallClockSeconds = null)
    {
        _clock = wallClockSeconds ?? EventFileWriter.UnixSeconds;
        _writer = new EventFileWriter(logDirectory, flushInterval, resumeStep, _clock);
    }

    /// <summary>
    /// The logger of a run described by <paramref name="recipe"/>: &lt;output_dir&gt;/tensorboard, flushed every
    /// logging.flush_seconds. Logs the resolved recipe as text at the start step; a fresh run (no
    /// <paramref name="resumeStep"/>) also logs the recipe's hyperparameters. Null when logging.tensorboard is false.
    /// </summary>
    public static TrainingMetricsLogger? Start(Recipe recipe, long? resumeStep = null, Func<double>? wallClockSeconds = null)
    {
        if (!recipe.Logging.TensorBoard)
            return null;
        var logger = new TrainingMetricsLogger(DirectoryFor(recipe.OutputDir), TimeSpan.FromSeconds(recipe.Logging.FlushSeconds), resumeStep, wallClockSeconds);
        logger.LogRecipe(resumeStep ?? 0, recipe.ToYaml());
        if (resumeStep is null)
            logger.LogHParams(recipe.HParams(), MetricTags.HParamsMetrics);
        return logger;
    }

    /// <summary>The run folder TensorBoard shows for an output directory.</summary>
    public static string DirectoryFor(string outputDirectory) => Path.Combine(outputDirectory, "tensorboard");

    public string FilePath => _writer.FilePath;

    public void Log(long step, string tag, double value) => Log(step, [new KeyValuePair<string, double>(tag, value)]);

    /// <summary>Logs several scalars at one step in a single event (one Summary with one value per tag).</summary>
    public void Log(long step, IEnumerable<KeyValuePair<string, double>> values)
    {
        var floats = new List<KeyValuePair<string, float>>();
        foreach (var (tag, value) in values)
        {
            if (_lastStepByTag.TryGetValue(tag, out long last) && step <= last)
                throw new ArgumentException($"TensorBoard tag {tag} was logged at step {last}; step {step} must be larger.");
            _lastStepByTag[tag] = step;
            floats.Add(new(tag, (float)value));
        }
        if (floats.Count > 0)
            _writer.Write(EventEncoder.ScalarsEvent(_clock(), step, floats));
    }

    /// <summary>A Markdown text summary, shown under tag <c>name/text_summary</c> in the Text dashboard.</summary>
    public void LogText(long step, string name, string markdown) =>
        _writer.Write(EventEncoder.TextEvent(_clock(), step, name, markdown));

    /// <summary>The resolved recipe as a Markdown code block (each line indented four spaces) under tag recipe/text_summary.</summary>
    public void LogRecipe(long step, string recipeYaml)
    {
        var markdown = new StringBuilder();
        foreach (string line in recipeYaml.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'))
            markdown.Append("    ").Append(line).Append('\n');
        LogText(step, RecipeTextName, markdown.ToString());
    }

    /// <summary>
    /// The hparams plugin's experiment and session_start_info summaries. Values are double (any number), string or
    /// bool; <paramref name="metricTags"/> are the scalar tags the dashboard shows against them.
    /// </summary>
    public void LogHParams(IReadOnlyList<KeyValuePair<string, object>> hparams, IEnumerable<string> metricTags)
    {
        double now = _clock();
        var infos = hparams.Select(h => (h.Key, HParamsEncoder.TypeOf(h.Value))).ToList();
        _writer.Write(EventEncoder.PluginEvent(now, 0, HParamsEncoder.ExperimentTag, HParamsEncoder.PluginName,
            HParamsEncoder.Experiment(infos, metricTags, now)));
        _writer.Write(EventEncoder.PluginEvent(now, 0, HParamsEncoder.SessionStartTag, HParamsEncoder.PluginName,
            HParamsEncoder.SessionStart(hparams, now)));
    }

    /// <summary>The hparams session_end_info: SUCCESS or FAILURE, with the end time.</summary>
    public void LogSessionEnd(bool succeeded)
    {
        double now = _clock();
        var status = succeeded ? HParamsEncoder.SessionStatus.Success : HParamsEncoder.SessionStatus.Failure;
        _writer.Write(EventEncoder.PluginEvent(now, 0, HParamsEncoder.SessionEndTag, HParamsEncoder.PluginName,
            HParamsEncoder.SessionEnd(status, now)));
    }

    public void Flush() => _writer.Flush();

    public void Dispose() => _writer.Dispose();
}
