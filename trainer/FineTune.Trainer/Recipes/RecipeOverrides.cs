using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// Command-line overrides `key.path=value` applied to the recipe tree before binding, so they are checked
/// exactly like keys in the file. The value is parsed as YAML (`8`, `3e-4`, `true`, `null`, `[0.9, 0.95]`,
/// `"a string"`); the key must be a recipe field or section (`model.config=null` removes the config section).
/// reference: torchtune `_merge_yaml_and_cli_args` (FORMATS.md §4.2): exactly one `=` split, CLI wins.
/// </summary>
internal static partial class RecipeOverrides
{
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
    private static partial Regex KeyPattern();

    public static void Apply(RecipeDocument document, IEnumerable<string> overrides)
    {
        foreach (string text in overrides)
            ApplyOne(document, text);
    }

    private static void ApplyOne(RecipeDocument document, string text)
    {
        int equals = text.IndexOf('=');
        if (equals < 0)
            throw new UserErrorException($"Override '{text}' has no '='; write it as key.path=value, e.g. training.batch_size=8.");
        string key = text[..equals].Trim();
        string valueText = text[(equals + 1)..];
        if (key.Length == 0)
            throw new UserErrorException($"Override '{text}' has no key before '='; write it as key.path=value.");
        if (!KeyPattern().IsMatch(key))
            throw new UserErrorException($"Override key '{key}' is not a dotted recipe path; use names like training.batch_size.");
        bool isField = RecipeSchema.TryGetField(key, out _);
        if (!isField && !RecipeSchema.Sections.Contains(key))
            throw new UserErrorException($"Override {text} names no recipe key {key}; {RecipeKeySuggester.Hint(key)}.");
        if (valueText.Trim().Length == 0)
            throw new UserErrorException($"Override {text} has no value; write {key}=null to clear it or give a value.");

        string origin = $"the override {text}";
        YamlNode? value = RecipeDocument.ParseYaml(valueText, $"The value of override {key}", out string? problem);
        if (problem is not null)
            throw new UserErrorException(problem);
        value ??= new YamlScalarNode("null");
        document.SetOrigin(value, origin);

        string[] segments = key.Split('.');
        YamlMappingNode mapping = document.Root;
        for (int i = 0; i < segments.Length - 1; i++)
        {
            var segmentKey = new YamlScalarNode(segments[i]);
            if (!mapping.Children.TryGetValue(segmentKey, out YamlNode? child) || child is not YamlMappingNode childMapping)
            {
                // An absent or null section becomes a mapping holding just the override.
                childMapping = new YamlMappingNode();
                document.SetOrigin(childMapping, origin);
                document.SetOrigin(segmentKey, origin);
                mapping.Children[segmentKey] = childMapping;
            }
            mapping = childMapping;
        }
        var leafKey = new YamlScalarNode(segments[^1]);
        document.SetOrigin(leafKey, origin);
        mapping.Children[leafKey] = value;
    }
}
