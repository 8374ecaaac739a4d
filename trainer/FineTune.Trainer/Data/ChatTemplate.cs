using FineTune.Trainer.Jinja;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// A chat template: the Jinja text that turns a conversation into the model's prompt format (tokenizer_config.json
/// `chat_template`, or FineTune's default ChatML), rendered as transformers' apply_chat_template renders it: with
/// messages, add_generation_prompt, tools and documents (none), and the tokenizer's special tokens (bos_token,
/// eos_token, pad_token, unk_token, only those it has). <see cref="Render"/> gives the text; the formatter uses
/// <see cref="RenderMarked"/>, where bos_token and eos_token are private-use markers, so the ids of the tokens the
/// template wrote can be told from the same text typed inside a message.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The standard ChatML template (transformers' former default_chat_template).</summary>
    public const string ChatMlSource =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    internal const string BosMarker = "\uE000bos_token\uE001";
    internal const string EosMarker = "\uE000eos_token\uE001";

    private readonly JinjaTemplate _template;

    private ChatTemplate(JinjaTemplate template, string name, bool isDefault)
    {
        _template = template;
        Name = name;
        IsDefault = isDefault;
    }

    /// <summary>FineTune's default when the tokenizer declares no template: ChatML.</summary>
    public static ChatTemplate ChatMl { get; } = new(JinjaTemplate.Parse(ChatMlSource), "FineTune's default ChatML template", isDefault: true);

    /// <summary>The template for messages: "the chat_template of DIR/tokenizer_config.json", "FineTune's default ChatML template".</summary>
    public string Name { get; }

    /// <summary>
    /// True for the built-in ChatML used when a tokenizer declares no template: the tokenizer's prefix (its BOS, as
    /// for text and alpaca data) goes first. A declared template writes its own special tokens, and nothing is added
    /// (transformers tokenizes a rendered chat with add_special_tokens=False).
    /// </summary>
    public bool IsDefault { get; }

    /// <summary>Parses <paramref name="source"/>; throws <see cref="JinjaException"/> when it is not valid or not supported Jinja.</summary>
    public static ChatTemplate Parse(string source, string name) => new(JinjaTemplate.Parse(source), name, isDefault: false);

    /// <summary>The conversation as text, special tokens written as the tokenizer spells them.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, ITokenizer tokenizer) =>
        Unmark(RenderMarked(messages, addGenerationPrompt, tokenizer), tokenizer);

    /// <summary>The conversation as text with bos_token and eos_token written as <see cref="BosMarker"/> / <see cref="EosMarker"/>.</summary>
    internal string RenderMarked(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, ITokenizer tokenizer)
    {
        var variables = new Dictionary<string, object?>
        {
            ["messages"] = messages.Select(m => new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (tokenizer.BosId is not null)
            variables["bos_token"] = BosMarker;
        if (tokenizer.EosId is not null)
            variables["eos_token"] = EosMarker;
        if (tokenizer.PadId is int pad && tokenizer.IdToToken(pad) is string padText)
            variables["pad_token"] = padText;
        if (tokenizer.TokenToId("<unk>") is int unk && tokenizer.IdToToken(unk) is string unkText)
            variables["unk_token"] = unkText;
        return _template.Render(variables);
    }

    internal static string Unmark(string text, ITokenizer tokenizer) => text
        .Replace(BosMarker, tokenizer.BosId is int bos ? tokenizer.IdToToken(bos) ?? "" : "", StringComparison.Ordinal)
        .Replace(EosMarker, tokenizer.EosId is int eos ? tokenizer.IdToToken(eos) ?? "" : "", StringComparison.Ordinal);

    public override string ToString() => Name;
}
