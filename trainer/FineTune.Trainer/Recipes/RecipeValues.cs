using System.Globalization;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// The resolved value of every schema field (defaults filled in), which optional sections are present, and where
/// each value came from ("line 7 of r.yaml", "the override training.batch_size=8"), so later checks can point at it.
/// Values are long, double, bool, string, double[2], string[] or null, as <see cref="FieldKind"/> says.
/// </summary>
internal sealed class RecipeValues
{
    private readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _origins = new(StringComparer.Ordinal);
    private readonly HashSet<string> _presentSections = new(StringComparer.Ordinal);

    public RecipeValues()
    {
        foreach (RecipeField field in RecipeSchema.Fields)
            _values[field.Path] = field.Default switch
            {
                double[] pair => (double[])pair.Clone(),
                string[] names => (string[])names.Clone(),
                var value => value,
            };
    }

    public void Set(string path, object? value, string origin)
    {
        if (!_values.ContainsKey(path))
            throw new ArgumentException($"{path} is not in the recipe schema.");
        _values[path] = value;
        _origins[path] = origin;
    }

    public void SetSectionPresent(string section, bool present)
    {
        if (present)
            _presentSections.Add(section);
        else
            _presentSections.Remove(section);
    }

    public bool IsSectionPresent(string section) => _presentSections.Contains(section);

    /// <summary>Whether the field belongs to the resolved recipe (false inside an absent optional section).</summary>
    public bool IsActive(string path) =>
        RecipeSchema.OptionalSections.All(s => !path.StartsWith(s + ".", StringComparison.Ordinal) || _presentSections.Contains(s));

    public object? Get(string path) =>
        _values.TryGetValue(path, out object? value) ? value : throw new ArgumentException($"{path} is not in the recipe schema.");

    /// <summary>" (line 7 of r.yaml)" or " (from the override a.b=1)", or "" for a default; appended to messages.</summary>
    public string Where(string path) => _origins.TryGetValue(path, out string? origin) ? $" ({origin})" : "";

    public bool IsDefault(string path) => !_origins.ContainsKey(path);

    public long Long(string path) => (long)Get(path)!;
    public long? NullableLong(string path) => (long?)Get(path);
    public int Int(string path) => checked((int)Long(path));
    public int? NullableInt(string path) => NullableLong(path) is long v ? checked((int)v) : null;
    public double Double(string path) => (double)Get(path)!;
    public double? NullableDouble(string path) => (double?)Get(path);
    public bool Bool(string path) => (bool)Get(path)!;
    public string? String(string path) => (string?)Get(path);
    public IReadOnlyList<string> Names(string path) => (string[])Get(path)!;
    public (double, double) Pair(string path) => Get(path) is double[] { Length: 2 } p ? (p[0], p[1]) : throw new InvalidOperationException(path);

    /// <summary>A choice field as its enum: "io_uring" -> IoUring, "bf16" -> Bf16 (underscores dropped, case ignored).</summary>
    public T Choice<T>(string path) where T : struct, Enum =>
        Enum.Parse<T>(String(path)!.Replace("_", "", StringComparison.Ordinal), ignoreCase: true);

    /// <summary>Formats a number for messages without trailing noise: whole numbers in full (100000000), others to 6 digits (0.5, 2E-05).</summary>
    public static string Format(double value) => Math.Abs(value) < 1e15 && value == Math.Floor(value)
        ? ((long)value).ToString(CultureInfo.InvariantCulture)
        : value.ToString("G6", CultureInfo.InvariantCulture);
}
