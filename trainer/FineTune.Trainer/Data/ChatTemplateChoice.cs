using System.Text.Json;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Which chat format a dataset is written in, and why. The tokenizer folder's tokenizer_config.json `chat_template`
/// (a Jinja string, or a list of {name, template}) is recognized by its markers: "&lt;|im_start|&gt;" is ChatML,
/// "&lt;|start_header_id|&gt;" is Llama 3. FineTune does not run Jinja; a template with neither marker, or no
/// template at all, falls back to ChatML and <see cref="Reason"/> says so (the CLI prints it).
/// </summary>
public sealed record ChatTemplateChoice(ChatTemplateKind Kind, string Reason)
{
    public static ChatTemplateChoice Detect(string tokenizerPathOrName)
    {
        string? configPath = TokenizerLoader.FindConfigFile(tokenizerPathOrName);
        if (configPath is null)
            return new(ChatTemplateKind.ChatMl, "no tokenizer_config.json beside the tokenizer; using the default ChatML chat format");
        string? template;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
            template = ReadTemplate(document.RootElement);
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{configPath}: not valid JSON (line {e.LineNumber + 1}); fix or remove the file.", e);
        }
        return FromTemplateText(template, configPath);
    }

    /// <summary>Recognizes a chat_template's text (null = none declared).</summary>
    public static ChatTemplateChoice FromTemplateText(string? template, string configPath)
    {
        if (template is null)
            return new(ChatTemplateKind.ChatMl, $"{configPath} declares no chat_template; using the default ChatML chat format");
        if (template.Contains("<|start_header_id|>", StringComparison.Ordinal))
            return new(ChatTemplateKind.Llama3, $"{configPath}: chat_template recognized as Llama 3");
        if (template.Contains("<|im_start|>", StringComparison.Ordinal))
            return new(ChatTemplateKind.ChatMl, $"{configPath}: chat_template recognized as ChatML");
        return new(ChatTemplateKind.ChatMl, $"{configPath}: chat_template is neither ChatML nor Llama 3, which FineTune does not support; using the default ChatML chat format instead");
    }

    private static string? ReadTemplate(JsonElement root)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement value))
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return value.GetString();
        if (value.ValueKind != JsonValueKind.Array)
            return null;
        // A list of named templates: prefer "default", else the first.
        string? first = null;
        foreach (JsonElement item in value.EnumerateArray())
        {
            string? text = item.TryGetProperty("template", out JsonElement t) ? t.GetString() : null;
            first ??= text;
            if (item.TryGetProperty("name", out JsonElement n) && n.GetString() == "default")
                return text;
        }
        return first;
    }
}
