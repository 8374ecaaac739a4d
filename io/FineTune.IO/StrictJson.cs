using System.Text.Json;

namespace FineTune.IO;

/// <summary>
/// The one rule for every JSON file FineTune reads (config.json, tokenizer.json, tokenizer_config.json,
/// model.safetensors.index.json, generation_config.json, chat_template.json, adapter_config.json, data files, and
/// its own checkpoint manifests, trainer_state.json, base.json and optimizer-state manifests): RFC 8259 with no
/// comments or trailing commas, depth at most 256, and no object with the same key twice (System.Text.Json keeps
/// both and readers would silently take one); a leading UTF-8 byte order mark is dropped. A problem is a
/// <see cref="UserErrorException"/> naming the file, the line and the key's JSON path. Files are read through
/// <see cref="InputFile"/> (regular files only, bounded).
/// </summary>
public static class StrictJson
{
    /// <summary>The parser's half of the rule (no comments, no trailing commas, depth 256), for readers with their own messages.</summary>
    public static JsonDocumentOptions Options { get; } = new() { MaxDepth = 256, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false };

    /// <summary>Parses and checks <paramref name="bytes"/>; <paramref name="sourceName"/> names the file in messages.</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> bytes, string sourceName, string fix = "replace it with a valid copy")
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(InputFile.WithoutByteOrderMark(bytes), Options);
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{sourceName}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {Reason(e)}); {fix}.", e);
        }
        if (FirstDuplicateKey(document.RootElement) is string key)
        {
            document.Dispose();
            throw new UserErrorException($"{sourceName}: key {key} appears twice, and which one counts is ambiguous; {fix}.");
        }
        return document;
    }

    /// <summary>Reads a regular file of at most <paramref name="maxByteCount"/> bytes (<see cref="InputFile"/>) and parses it strictly.</summary>
    public static JsonDocument ReadFile(string path, long maxByteCount, string what, string fix = "replace it with a valid copy") =>
        Parse(InputFile.ReadAllBytes(path, maxByteCount, what), path, fix);

    /// <summary>The JSON path ("$.a.b[2].c") of the first key that appears twice in one object, depth first; null when none does.</summary>
    public static string? FirstDuplicateKey(JsonElement root) => DuplicateBelow(root) is string suffix ? "$" + suffix : null;

    /// <summary>System.Text.Json's message without its "Path: ... LineNumber: ..." tail (the caller says where).</summary>
    public static string Reason(JsonException e) => e.Message.Split(" Path:")[0].Split(" LineNumber:")[0].TrimEnd('.');

    /// <summary>The path of a duplicate below <paramref name="element"/>, relative to it (".b[2].c"); built only when one is found.</summary>
    private static string? DuplicateBelow(JsonElement element)
    {
        // iterative over the tree would need its own stack; depth is bounded by MaxDepth, so recursion is safe
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (JsonProperty property in element.EnumerateObject())
                {
                    if (!seen.Add(property.Name))
                        return $".{property.Name}";
                    if (DuplicateBelow(property.Value) is string inner)
                        return $".{property.Name}{inner}";
                }
                return null;
            case JsonValueKind.Array:
                int index = 0;
                foreach (JsonElement item in element.EnumerateArray())
                {
                    if (DuplicateBelow(item) is string inner)
                        return $"[{index}]{inner}";
                    index++;
                }
                return null;
            default:
                return null;
        }
    }
}
