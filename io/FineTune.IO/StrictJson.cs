using System.Text.Json;

namespace FineTune.IO;

/// <summary>
/// The one rule for every JSON file FineTune reads (config.json, tokenizer.json, tokenizer_config.json, checkpoint
/// manifests, trainer_state.json): RFC 8259 with no comments or trailing commas, depth at most 256, and no
/// object with the same key twice (System.Text.Json keeps both and readers would silently take one). A problem is a
/// <see cref="UserErrorException"/> naming the file, the line and the key's JSON path.
/// </summary>
public static class StrictJson
{
    private static readonly JsonDocumentOptions s_options = new() { MaxDepth = 256, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false };

    /// <summary>Parses and checks <paramref name="bytes"/>; <paramref name="sourceName"/> names the file in messages.</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> bytes, string sourceName, string fix = "replace it with a valid copy")
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, s_options);
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{sourceName}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message.Split(" Path:")[0].Split(" LineNumber:")[0].TrimEnd('.')}); {fix}.", e);
        }
        try
        {
            CheckDuplicates(document.RootElement, "$", sourceName, fix);
            return document;
        }
        catch
        {
            document.Dispose();
            throw;
        }
    }

    /// <summary>Reads a regular file of at most <paramref name="maxByteCount"/> bytes (<see cref="InputFile"/>) and parses it strictly.</summary>
    public static JsonDocument ReadFile(string path, long maxByteCount, string what, string fix = "replace it with a valid copy") =>
        Parse(InputFile.ReadAllBytes(path, maxByteCount, what), path, fix);

    private static void CheckDuplicates(JsonElement element, string path, string sourceName, string fix)
    {
        // iterative over the tree would need its own stack; depth is bounded by MaxDepth, so recursion is safe
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (JsonProperty property in element.EnumerateObject())
                {
                    string child = $"{path}.{property.Name}";
                    if (!seen.Add(property.Name))
                        throw new UserErrorException($"{sourceName}: key {child} appears twice, and which one counts is ambiguous; {fix}.");
                    CheckDuplicates(property.Value, child, sourceName, fix);
                }
                break;
            case JsonValueKind.Array:
                int index = 0;
                foreach (JsonElement item in element.EnumerateArray())
                    CheckDuplicates(item, $"{path}[{index++}]", sourceName, fix);
                break;
        }
    }
}
