using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// A recipe as a YAML tree before binding, with where each node came from (a line of the file or an override),
/// so overrides can be applied to the tree and every later error can still point at its source.
/// </summary>
internal sealed class RecipeDocument
{
    private readonly Dictionary<YamlNode, string> _origins = new(ReferenceEqualityComparer.Instance);

    private RecipeDocument(YamlMappingNode root, string sourceName)
    {
        Root = root;
        SourceName = sourceName;
    }

    public YamlMappingNode Root { get; }
    public string SourceName { get; }

    /// <summary>Parses recipe text; an empty document is an empty mapping (all defaults).</summary>
    public static RecipeDocument Parse(string yamlText, string sourceName)
    {
        YamlNode? rootNode = ParseYaml(yamlText, $"Recipe {sourceName}", out string? problem);
        if (problem is not null)
            throw new UserErrorException(problem);
        var root = rootNode switch
        {
            null => new YamlMappingNode(),
            YamlScalarNode { Value: null or "" or "~" or "null" } => new YamlMappingNode(),
            YamlMappingNode mapping => mapping,
            _ => throw new UserErrorException($"Recipe {sourceName} must be a YAML mapping of sections (model:, dataset:, training:, ...), not a {Describe(rootNode)}."),
        };
        return new RecipeDocument(root, sourceName);
    }

    /// <summary>Parses one YAML document; null for an empty one; <paramref name="problem"/> is a sentence on a syntax error.</summary>
    public static YamlNode? ParseYaml(string text, string what, out string? problem)
    {
        problem = null;
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            // YamlDotNet reports duplicate keys and syntax errors alike with a position (1-based lines).
            string reason = (e.InnerException?.Message ?? e.Message).TrimEnd('.');
            problem = $"{what} is not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {reason}.";
            return null;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException)
        {
            // YamlDotNet's scanner throws these on some malformed input instead of a YamlException (found by fuzzing)
            problem = $"{what} is not valid YAML: {e.Message.TrimEnd('.')}.";
            return null;
        }
        if (stream.Documents.Count > 1)
        {
            problem = $"{what} holds {stream.Documents.Count} YAML documents; keep one.";
            return null;
        }
        return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
    }

    public void SetOrigin(YamlNode node, string origin)
    {
        _origins[node] = origin;
        if (node is YamlSequenceNode sequence)
            foreach (YamlNode child in sequence.Children)
                SetOrigin(child, origin);
        if (node is YamlMappingNode mapping)
            foreach (var (key, value) in mapping.Children)
            {
                SetOrigin(key, origin);
                SetOrigin(value, origin);
            }
    }

    /// <summary>"line 7 of r.yaml" for file nodes, "the override a.b=1" for override nodes.</summary>
    public string Origin(YamlNode node) =>
        _origins.TryGetValue(node, out string? origin) ? origin : $"line {node.Start.Line} of {SourceName}";

    public static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "mapping",
        YamlSequenceNode => "list",
        YamlScalarNode scalar => $"value '{scalar.Value}'",
        _ => node.NodeType.ToString(),
    };
}
