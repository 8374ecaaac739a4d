namespace FineTune.Trainer.Recipes;

/// <summary>
/// A resolved, validated recipe: every field has a value (defaults from <see cref="RecipeSchema"/>, then the
/// file, then command-line overrides), and the whole passed the checks of <see cref="RecipeValidator"/>.
/// <see cref="ToYaml"/> writes it back completely (for checkpoints and TensorBoard). This type holds no
/// behaviour of the run itself; the trainer reads it. A class, not a record: a `with` copy would let the
/// typed sections drift from the values <see cref="ToYaml"/> writes.
/// </summary>
public sealed class Recipe
{
    private Recipe()
    {
    }

    public ModelSection Model { get; private init; } = null!;
    public TokenizerSection Tokenizer { get; private init; } = null!;
    public DatasetSection Dataset { get; private init; } = null!;
    public TrainingSection Training { get; private init; } = null!;
    public OptimizerSection Optimizer { get; private init; } = null!;
    public ScheduleSection Schedule { get; private init; } = null!;
    public OffloadSection Offload { get; private init; } = null!;
    public LoggingSection Logging { get; private init; } = null!;
    public CheckpointSection Checkpoint { get; private init; } = null!;
    public EvalSection Eval { get; private init; } = null!;
    public string OutputDir { get; private init; } = null!;
    /// <summary>Null: start fresh; "latest" (also written resume=true); or a checkpoint folder path.</summary>
    public string? Resume { get; private init; }

    internal RecipeValues Values { get; private init; } = null!;

    /// <summary>Reads, overrides, binds and validates a recipe file.</summary>
    public static Recipe Load(string path, IEnumerable<string>? overrides = null, RecipeLoadOptions? options = null)
    {
        string text;
        try
        {
            if (path.Length > 0 && !path.Contains('\0') && (File.Exists(path) || Directory.Exists(path)))
                IO.InputFile.RequireRegular(path, "Recipe file");
            else if (path.Length == 0 || path.Contains('\0'))
                IO.InputFile.RequireRegular(path, "The recipe path");
            text = System.Text.Encoding.UTF8.GetString(IO.InputFile.ReadAllBytes(path, IO.InputFile.RecipeLimitByteCount, "recipe file"));
        }
        catch (UserErrorException e) when (e.Message.Contains("does not exist", StringComparison.Ordinal))
        {
            throw new UserErrorException($"Recipe file {path} does not exist; give the path of a .yaml recipe (see recipes/).", e);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UserErrorException($"Recipe file {path} does not exist; give the path of a .yaml recipe (see recipes/).", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot read recipe file {path} ({e.Message.TrimEnd('.')}).", e);
        }
        return Parse(text, path, overrides, options);
    }

    /// <summary>As <see cref="Load"/>, from text; <paramref name="sourceName"/> names it in messages.</summary>
    public static Recipe Parse(string yamlText, string sourceName, IEnumerable<string>? overrides = null, RecipeLoadOptions? options = null)
    {
        options ??= RecipeLoadOptions.Default;
        RecipeDocument document = RecipeDocument.Parse(yamlText, sourceName);
        RecipeOverrides.Apply(document, overrides ?? []);
        Recipe recipe = FromValues(RecipeBinder.Bind(document), options.Rank);
        if (options.Validate)
            RecipeValidator.Validate(recipe, options);
        return recipe;
    }

    /// <summary>The complete resolved recipe as YAML; <see cref="Parse"/> of it gives the same recipe.</summary>
    public string ToYaml() => RecipeYamlWriter.Write(Values);

    /// <summary>As <see cref="ToYaml"/> with every path made absolute (what a checkpoint stores, so a resume works from any directory).</summary>
    public string ToYamlWithAbsolutePaths() => RecipeYamlWriter.Write(Values, absolutePaths: true);

    /// <summary>
    /// Every active scalar field with a value, as (dotted path, double | string | bool) for TensorBoard's hparams
    /// dashboard; lists are split into path.0, path.1.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, object>> HParams()
    {
        var hparams = new List<KeyValuePair<string, object>>();
        foreach (RecipeField field in RecipeSchema.Fields.Where(f => Values.IsActive(f.Path)))
        {
            switch (Values.Get(field.Path))
            {
                case null: break;
                case long l: hparams.Add(new(field.Path, (double)l)); break;
                case string[] names: hparams.Add(new(field.Path, string.Join(",", names))); break;
                case double[] pair:
                    for (int i = 0; i < pair.Length; i++)
                        hparams.Add(new($"{field.Path}.{i}", pair[i]));
                    break;
                case object value: hparams.Add(new(field.Path, value)); break;
            }
        }
        return hparams;
    }

    internal static Recipe FromValues(RecipeValues v, int rank = 0) => new()
    {
        Model = ModelSection.From(v),
        Tokenizer = TokenizerSection.From(v),
        Dataset = DatasetSection.From(v),
        Training = TrainingSection.From(v),
        Optimizer = OptimizerSection.From(v),
        Schedule = ScheduleSection.From(v),
        Offload = OffloadSection.From(v, rank),
        Logging = LoggingSection.From(v),
        Checkpoint = CheckpointSection.From(v),
        Eval = EvalSection.From(v),
        OutputDir = v.String("output_dir")!,
        Resume = v.String("resume") switch { "true" => "latest", "false" => null, var text => text },
        Values = v,
    };
}
