using System.Text.Json;
using FineTune.Trainer.Jinja;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Which chat template a conversation dataset is rendered with, and why (the CLI prints <see cref="Reason"/> in
/// `data stats` and at the start of a run). The tokenizer folder's chat_template.jinja, else chat_template.json, else
/// tokenizer_config.json `chat_template` (a Jinja string, or a list of {name, template} where "default" wins) is
/// rendered as Jinja, whatever its format; a
/// template FineTune cannot render (invalid Jinja, or a construct the interpreter lacks) is refused with a sentence
/// naming the construct, never replaced. Without a declared template, the default is ChatML, and the reason says so.
/// </summary>
public sealed record ChatTemplateChoice(ChatTemplate Template, string Reason)
{
    /// <summary>Where newer transformers save the template (it wins over tokenizer_config.json, as there).</summary>
    public const string JinjaFileName = "chat_template.jinja";

    /// <summary>Where transformers 4.43-4.50 saved it: {"chat_template": "..."}.</summary>
    public const string JsonFileName = "chat_template.json";

    public static ChatTemplateChoice Default(string why) => new(ChatTemplate.ChatMl, $"{why}; using FineTune's default ChatML chat template");

    public static ChatTemplateChoice Detect(string tokenizerPathOrName)
    {
        if (tokenizerPathOrName == TokenizerLoader.ByteTokenizerName)
            return Default("the byte tokenizer has no chat template");
        string folder = Directory.Exists(tokenizerPathOrName) ? tokenizerPathOrName : Path.GetDirectoryName(Path.GetFullPath(tokenizerPathOrName))!;
        string jinjaFile = Path.Combine(folder, JinjaFileName), jsonFile = Path.Combine(folder, JsonFileName);
        if (File.Exists(jinjaFile))
            return FromTemplateText(IO.InputFile.ReadAllText(jinjaFile, IO.InputFile.ConfigLimitByteCount, JinjaFileName), jinjaFile);
        if (File.Exists(jsonFile))
            return FromTemplateText(ReadTemplateFile(jsonFile), jsonFile);
        string? configPath = TokenizerLoader.FindConfigFile(tokenizerPathOrName);
        if (configPath is null)
            return Default("no tokenizer_config.json beside the tokenizer");
        return FromTemplateText(ReadTemplateFile(configPath), configPath);
    }

    /// <summary>chat_template.json or tokenizer_config.json, read by the strict rule (regular, bounded, no key twice).</summary>
    private static string? ReadTemplateFile(string path)
    {
        using JsonDocument document = IO.StrictJson.ReadFile(path, IO.InputFile.ConfigLimitByteCount, Path.GetFileName(path), "fix or remove the file");
        return ReadTemplate(document.RootElement, path);
    }

    /// <summary>The choice for a chat_template's text (null = none declared) read from <paramref name="configPath"/>.</summary>
    public static ChatTemplateChoice FromTemplateText(string? template, string configPath)
    {
        if (template is null)
            return Default($"{configPath} declares no chat_template");
        ChatTemplate parsed;
        try
        {
            parsed = ChatTemplate.Parse(template, $"the chat_template of {configPath}");
            Probe(parsed);
        }
        catch (JinjaException e) when (e.Kind != JinjaErrorKind.Raised)
        {
            throw new UserErrorException(e.Kind == JinjaErrorKind.Unsupported
                ? $"{configPath}: the chat_template uses {e.Detail}, which FineTune's Jinja interpreter does not support; replace the template with one that avoids it, or train on text or alpaca data."
                : $"{configPath}: the chat_template is not valid Jinja: {e.Message}; fix the template.", e);
        }
        return new(parsed, $"{configPath}: chat_template rendered as Jinja ({Describe(template)})");
    }

    /// <summary>
    /// Renders a plain user/assistant exchange once, so a construct that only fails when run (a str method the
    /// interpreter lacks, % formatting) is refused before training starts. A template that raises on purpose
    /// (raise_exception) is its own judge of the data and passes the probe.
    /// </summary>
    private static void Probe(ChatTemplate template)
    {
        var tokenizer = new ByteTokenizer();
        ChatMessage[] exchange = [new("user", "Hello"), new("assistant", "Hi")];
        foreach (var (messages, prompt) in new[] { (exchange, false), (exchange[..1], true) })
        {
            try
            {
                template.Render(messages, prompt, tokenizer);
            }
            catch (JinjaException e) when (e.Kind == JinjaErrorKind.Raised)
            {
            }
        }
    }

    /// <summary>A short hint of the format, from the markers the template writes.</summary>
    private static string Describe(string template) =>
        template.Contains("<|start_header_id|>", StringComparison.Ordinal) ? "Llama 3 style"
        : template.Contains("<|im_start|>", StringComparison.Ordinal) ? "ChatML style"
        : template.Contains("[INST]", StringComparison.Ordinal) ? "Mistral [INST] style"
        : template.Contains("<start_of_turn>", StringComparison.Ordinal) ? "Gemma style"
        : template.Contains("<|user|>", StringComparison.Ordinal) ? "Zephyr/Phi-3 style"
        : "its own format";

    private static string? ReadTemplate(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new UserErrorException($"{path}: the file holds a JSON {Kind(root)}, not an object with a chat_template; fix or remove the file.");
        if (!root.TryGetProperty("chat_template", out JsonElement value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return value.GetString();
        if (value.ValueKind != JsonValueKind.Array)
            throw new UserErrorException($"{path}: chat_template is a JSON {Kind(value)}; it must be a Jinja string or a list of {{\"name\", \"template\"}} objects.");
        // A list of named templates: prefer "default", else the first.
        string? first = null;
        int index = 0;
        foreach (JsonElement item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("template", out JsonElement t) || t.ValueKind != JsonValueKind.String)
                throw new UserErrorException($"{path}: chat_template[{index}] is not a {{\"name\", \"template\"}} object with a Jinja string as its template; fix the list.");
            string text = t.GetString()!;
            first ??= text;
            if (item.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default")
                return text;
            index++;
        }
        return first;
    }

    private static string Kind(JsonElement element) => element.ValueKind.ToString().ToLowerInvariant();
}
