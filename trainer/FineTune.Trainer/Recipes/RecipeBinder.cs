using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// Binds a recipe tree to <see cref="RecipeValues"/>: every key must be in <see cref="RecipeSchema"/>, every value
/// must parse as its field's kind and lie in its range. Errors are one sentence naming the key, the line (or
/// override) and what is expected. Scalars follow the YAML 1.2 core schema: null is `null`, `~` or empty (plain,
/// not quoted); booleans are true/false; a quoted "8" is a string, not a number.
/// </summary>
internal static class RecipeBinder
{
    public static RecipeValues Bind(RecipeDocument document)
    {
        var values = new RecipeValues();
        BindMapping(document, document.Root, "", values);
        return values;
    }

    private static void BindMapping(RecipeDocument document, YamlMappingNode mapping, string prefix, RecipeValues values)
    {
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: string name })
                throw new UserErrorException($"Recipe key at {document.Origin(keyNode)} must be a plain name, not a {RecipeDocument.Describe(keyNode)}.");
            string path = prefix + name;
            if (RecipeSchema.Sections.Contains(path))
                BindSection(document, path, valueNode, values);
            else if (RecipeSchema.TryGetField(path, out RecipeField field))
                values.Set(path, Convert(document, field, valueNode), document.Origin(valueNode));
            else
                throw new UserErrorException($"Unknown recipe key {path} on {document.Origin(keyNode)}; {RecipeKeySuggester.Hint(path)}.");
        }
    }

    private static void BindSection(RecipeDocument document, string path, YamlNode node, RecipeValues values)
    {
        bool optional = RecipeSchema.OptionalSections.Contains(path);
        if (IsNull(node))
        {
            // `model.config: null` removes an optional section; an empty required section keeps its defaults.
            if (optional)
                values.SetSectionPresent(path, false);
            return;
        }
        if (node is not YamlMappingNode mapping)
        {
            string keys = string.Join(", ", RecipeSchema.Fields.Where(f => f.Section == path).Select(f => f.Name)
                .Concat(RecipeSchema.Sections.Where(s => s.StartsWith(path + ".", StringComparison.Ordinal) && !s[(path.Length + 1)..].Contains('.'))
                .Select(s => s[(path.Length + 1)..])));
            throw new UserErrorException($"Recipe section {path} on {document.Origin(node)} must be a mapping with keys like {keys}, not a {RecipeDocument.Describe(node)}.");
        }
        if (optional)
            values.SetSectionPresent(path, true);
        BindMapping(document, mapping, path + ".", values);
    }

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static object? Convert(RecipeDocument document, RecipeField field, YamlNode node)
    {
        string where = document.Origin(node);
        if (IsNull(node))
        {
            if (field.Nullable)
                return null;
            throw new UserErrorException($"{field.Path} on {where} is null but must be {field.Expected}; remove it to use the default {RecipeYamlWriter.FormatDefault(field)}.");
        }
        if (field.Kind == FieldKind.NumberPair)
            return ConvertPair(field, node, where);
        if (field.Kind == FieldKind.NameList)
            return ConvertNames(field, node, where);
        if (node is not YamlScalarNode scalar)
            throw new UserErrorException($"{field.Path} on {where} must be {field.Expected}, not a {RecipeDocument.Describe(node)}.");
        string text = scalar.Value ?? "";
        bool quoted = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted;
        string wrongType = $"{field.Path} on {where} is '{text}' but must be {field.Expected}.";
        switch (field.Kind)
        {
            case FieldKind.Integer:
                if (quoted || !long.TryParse(text.Replace("_", ""), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long integer))
                    throw new UserErrorException(wrongType);
                CheckRange(field, integer, text, where);
                if (!field.Wide && integer > int.MaxValue)
                    throw new UserErrorException($"{field.Path} is {text} on {where}; it must be at most {int.MaxValue}.");
                return integer;
            case FieldKind.Number:
                if (quoted || !TryParseNumber(text, out double number))
                    throw new UserErrorException(wrongType);
                CheckRange(field, number, text, where);
                return number;
            case FieldKind.Bool:
                if (!quoted && text.Equals("true", StringComparison.OrdinalIgnoreCase))
                    return true;
                if (!quoted && text.Equals("false", StringComparison.OrdinalIgnoreCase))
                    return false;
                throw new UserErrorException(wrongType);
            case FieldKind.Choice:
                if (field.Choices.Contains(text, StringComparer.Ordinal))
                    return text;
                string closest = RecipeKeySuggester.ClosestChoice(field.Choices, text);
                throw new UserErrorException($"{field.Path} on {where} is '{text}' but must be {field.Expected} (did you mean {closest}?).");
            case FieldKind.Path:
                if (text.Length == 0 || text.Contains('\0'))
                    throw new UserErrorException($"{field.Path} on {where} is {(text.Length == 0 ? "an empty path" : "a path with a NUL character")}; give a path, or null to use the default {RecipeYamlWriter.FormatDefault(field)}.");
                return text.StartsWith("~/", StringComparison.Ordinal)
                    ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..])
                    : text;
            default:
                return text;
        }
    }

    private static double[] ConvertPair(RecipeField field, YamlNode node, string where)
    {
        if (node is not YamlSequenceNode { Children.Count: 2 } sequence)
            throw new UserErrorException($"{field.Path} on {where} must be {field.Expected} like [0.9, 0.999], not a {RecipeDocument.Describe(node)}.");
        var pair = new double[2];
        for (int i = 0; i < 2; i++)
        {
            if (sequence.Children[i] is not YamlScalarNode { Value: string text, Style: not (ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted) }
                || !TryParseNumber(text, out pair[i]))
                throw new UserErrorException($"{field.Path} on {where} must be {field.Expected} like [0.9, 0.999].");
            CheckRange(field, pair[i], text, where);
        }
        return pair;
    }

    /// <summary>A list of choices (`[q_proj, v_proj]`), or one scalar that may list them with commas (`q_proj,v_proj`).</summary>
    private static string[] ConvertNames(RecipeField field, YamlNode node, string where)
    {
        IEnumerable<YamlNode> items = node is YamlSequenceNode sequence ? sequence.Children : [node];
        var names = new List<string>();
        foreach (YamlNode item in items)
        {
            if (item is not YamlScalarNode { Value: string text })
                throw new UserErrorException($"{field.Path} on {where} must be {field.Expected}, not a {RecipeDocument.Describe(item)}.");
            foreach (string name in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!field.Choices.Contains(name, StringComparer.Ordinal))
                {
                    string closest = field.Choices.MinBy(c => RecipeKeySuggester.Distance(c, name))!;
                    throw new UserErrorException($"{field.Path} on {where} lists '{name}' but must be {field.Expected} (did you mean {closest}?).");
                }
                if (!names.Contains(name))
                    names.Add(name);
            }
        }
        return names.ToArray();
    }

    private static bool TryParseNumber(string text, out double value) =>
        double.TryParse(text.Replace("_", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    private static void CheckRange(RecipeField field, double value, string text, string where)
    {
        if (field.RangeProblem(value) is string problem)
            throw new UserErrorException($"{field.Path} is {text} on {where}; it {problem}.");
    }
}
