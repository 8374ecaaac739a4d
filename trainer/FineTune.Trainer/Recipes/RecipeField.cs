namespace FineTune.Trainer.Recipes;

/// <summary>The YAML shape of a recipe field; decides parsing, the error wording and how the value is written back.</summary>
internal enum FieldKind
{
    /// <summary>A whole number, stored as long.</summary>
    Integer,
    /// <summary>A number, stored as double; integers are accepted.</summary>
    Number,
    Bool,
    Text,
    /// <summary>A file or folder path; a leading "~/" is expanded to the home folder.</summary>
    Path,
    /// <summary>One of <see cref="RecipeField.Choices"/>, stored as string.</summary>
    Choice,
    /// <summary>A list of exactly two numbers, stored as double[2].</summary>
    NumberPair,
    /// <summary>A list of names from <see cref="RecipeField.Choices"/> (or one name), stored as string[].</summary>
    NameList,
}

/// <summary>
/// One leaf of the recipe: its dotted path, kind, default, allowed range and the sentence the reference shows.
/// Ranges are checked while binding so the error can name the line the value came from.
/// </summary>
internal sealed record RecipeField(string Path, FieldKind Kind, object? Default, string Description)
{
    /// <summary>Whether `null` is a valid value (it always means what the description says, e.g. "auto").</summary>
    public bool Nullable { get; init; }
    /// <summary>Integers beyond int range allowed (seeds, step counts, parameter counts); others stop at int.MaxValue.</summary>
    public bool Wide { get; init; }
    public IReadOnlyList<string> Choices { get; init; } = [];
    public double? Minimum { get; init; }
    public bool MinimumExclusive { get; init; }
    public double? Maximum { get; init; }
    public bool MaximumExclusive { get; init; }

    public string Section => Path.Contains('.') ? Path[..Path.LastIndexOf('.')] : "";
    public string Name => Path[(Path.LastIndexOf('.') + 1)..];

    /// <summary>What the value must be, for error messages and the reference: "an integer ≥ 1", "one of a, b".</summary>
    public string Expected
    {
        get
        {
            string kind = Kind switch
            {
                FieldKind.Integer => "an integer",
                FieldKind.Number => "a number",
                FieldKind.Bool => "true or false",
                FieldKind.Text => "a string",
                FieldKind.Path => "a path",
                FieldKind.Choice => "one of " + string.Join(", ", Choices),
                FieldKind.NumberPair => "a list of two numbers",
                FieldKind.NameList => "a list of names from " + string.Join(", ", Choices),
                _ => throw new InvalidOperationException(Kind.ToString()),
            };
            string range = (Minimum, Maximum) switch
            {
                (double min, double max) => $" {(MinimumExclusive ? ">" : "≥")} {min} and {(MaximumExclusive ? "<" : "≤")} {max}",
                (double min, null) => $" {(MinimumExclusive ? ">" : "≥")} {min}",
                (null, double max) => $" {(MaximumExclusive ? "<" : "≤")} {max}",
                _ => "",
            };
            return kind + range + (Nullable ? " or null" : "");
        }
    }

    /// <summary>Null when <paramref name="value"/> is within range, else the reason ("must be at least 1").</summary>
    public string? RangeProblem(double value)
    {
        if (Minimum is double min && (MinimumExclusive ? value <= min : value < min))
            return MinimumExclusive ? $"must be greater than {min}" : $"must be at least {min}";
        if (Maximum is double max && (MaximumExclusive ? value >= max : value > max))
            return MaximumExclusive ? $"must be less than {max}" : $"must be at most {max}";
        return null;
    }
}
