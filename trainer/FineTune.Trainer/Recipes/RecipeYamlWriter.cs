using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// Writes resolved recipe values back as YAML: every field, defaults included, in schema order, so the text in a
/// checkpoint or a TensorBoard summary is the complete description of the run and loads back to the same values.
/// Absent optional sections (model.config when training from a folder) are left out.
/// </summary>
internal static partial class RecipeYamlWriter
{
    [GeneratedRegex(@"^[A-Za-z0-9_./~+-][A-Za-z0-9_./~+ -]*$")]
    private static partial Regex PlainSafe();

    /// <param name="absolutePaths">Write path fields (and a resume path) resolved against the working directory, so
    /// the text means the same from any other directory (a checkpoint's recipe.yaml, read by `finetune resume`).</param>
    public static string Write(RecipeValues values, bool absolutePaths = false)
    {
        var text = new StringBuilder();
        var openSections = new List<string>();
        foreach (RecipeField field in RecipeSchema.Fields)
        {
            if (!values.IsActive(field.Path))
                continue;
            string[] segments = field.Path.Split('.');
            int common = 0;
            while (common < openSections.Count && common < segments.Length - 1 && openSections[common] == segments[common])
                common++;
            openSections.RemoveRange(common, openSections.Count - common);
            for (int depth = common; depth < segments.Length - 1; depth++)
            {
                text.Append(' ', depth * 2).Append(segments[depth]).Append(":\n");
                openSections.Add(segments[depth]);
            }
            text.Append(' ', (segments.Length - 1) * 2).Append(segments[^1]).Append(": ")
                .Append(FormatValue(absolutePaths ? Absolute(field, values.Get(field.Path)) : values.Get(field.Path))).Append('\n');
        }
        return text.ToString();
    }

    public static string FormatDefault(RecipeField field) => FormatValue(field.Default);

    private static object? Absolute(RecipeField field, object? value) =>
        value is string text && text.Length > 0 && (field.Kind == FieldKind.Path || (field.Path == "resume" && text is not ("latest" or "true" or "false")))
            ? System.IO.Path.GetFullPath(text)
            : value;

    /// <summary>One YAML scalar or flow list that parses back to exactly <paramref name="value"/>.</summary>
    public static string FormatValue(object? value) => value switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatDouble(d),
        double[] pair => "[" + string.Join(", ", pair.Select(FormatDouble)) + "]",
        string[] names => "[" + string.Join(", ", names.Select(FormatString)) + "]",
        string s => FormatString(s),
        _ => throw new ArgumentException($"unexpected recipe value type {value.GetType().Name}"),
    };

    /// <summary>Round-trip ("R") digits, always with a '.' in the mantissa so YAML 1.1 readers also see a float: 2.0e-05, 1.0.</summary>
    private static string FormatDouble(double value)
    {
        string text = value.ToString("R", CultureInfo.InvariantCulture);
        int exponent = text.IndexOfAny(['E', 'e']);
        string mantissa = exponent >= 0 ? text[..exponent] : text;
        string suffix = exponent >= 0 ? "e" + text[(exponent + 1)..] : "";
        if (!mantissa.Contains('.'))
            mantissa += ".0";
        return mantissa + suffix;
    }

    private static string FormatString(string value)
    {
        bool looksLikeOtherType = value is "" or "~" || value.Equals("null", StringComparison.OrdinalIgnoreCase)
            || value.Equals("true", StringComparison.OrdinalIgnoreCase) || value.Equals("false", StringComparison.OrdinalIgnoreCase)
            || double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
        if (!looksLikeOtherType && PlainSafe().IsMatch(value) && !value.EndsWith(' ') && !value.StartsWith('-'))
            return value;
        var quoted = new StringBuilder("\"");
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': quoted.Append("\\\""); break;
                case '\\': quoted.Append("\\\\"); break;
                case '\n': quoted.Append("\\n"); break;
                case '\t': quoted.Append("\\t"); break;
                default:
                    if (char.IsControl(c))
                        quoted.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        quoted.Append(c);
                    break;
            }
        }
        return quoted.Append('"').ToString();
    }
}
