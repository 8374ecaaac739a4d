using FineTune.Trainer.Jinja;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Tokenizes a conversation with its <see cref="ChatTemplate"/>, training on assistant turns only: each assistant
/// turn's text and its end-of-turn marker carry labels (<see cref="ChatAssistantSpans"/> finds them in the rendered
/// text); everything else (system and user turns, role headers, the generation prompt, whitespace between turns) is
/// -100. The rendered text is cut at span boundaries and each piece encoded separately, so a mask boundary falls
/// exactly between tokens; bos_token/eos_token written by the template become the tokenizer's BOS/EOS ids directly
/// (so they work with the byte tokenizer too), while the same text inside a message is encoded as text.
/// The default ChatML template puts the tokenizer's prefix (BOS) first; a declared template writes its own.
/// reference: transformers apply_chat_template (tokenize with add_special_tokens=False); torchtune train_on_assistant masking.
/// </summary>
public sealed class ChatFormatter
{
    private readonly ITokenizer _tokenizer;
    private readonly ChatTemplate _template;

    public ChatFormatter(ITokenizer tokenizer, ChatTemplate template)
    {
        _tokenizer = tokenizer;
        _template = template;
    }

    public ChatTemplate Template => _template;

    /// <summary>The rendered conversation cut into pieces, each with whether it is trained (special tokens written out).</summary>
    public List<(string Text, bool Trained)> Pieces(IReadOnlyList<ChatMessage> messages) =>
        MarkedPieces(messages).Select(p => (ChatTemplate.Unmark(p.Text, _tokenizer), p.Trained)).ToList();

    public TokenizedSample Format(IReadOnlyList<ChatMessage> messages)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        if (_template.IsDefault)
        {
            ids.AddRange(_tokenizer.PrefixIds);
            labels.AddRange(Enumerable.Repeat(TokenizedSample.IgnoreIndex, _tokenizer.PrefixIds.Count));
        }
        foreach (var (text, trained) in MarkedPieces(messages))
        {
            int[] pieceIds = Encode(text);
            ids.AddRange(pieceIds);
            labels.AddRange(trained ? pieceIds : Enumerable.Repeat(TokenizedSample.IgnoreIndex, pieceIds.Length));
        }
        return new TokenizedSample(ids.ToArray(), labels.ToArray());
    }

    /// <summary>
    /// The ids a model is given to write the next assistant turn: the conversation rendered with
    /// add_generation_prompt (what `finetune generate --chat` feeds the model).
    /// </summary>
    public int[] PromptIds(IReadOnlyList<ChatMessage> messages)
    {
        string text = _template.RenderMarked(messages, addGenerationPrompt: true, _tokenizer);
        return [.. (_template.IsDefault ? _tokenizer.PrefixIds : []), .. Encode(text)];
    }

    /// <summary>
    /// The ids that end an assistant turn in this template ("&lt;|im_end|&gt;", "&lt;|eot_id|&gt;", EOS...), found as what
    /// the first assistant turn of a probe conversation trains after its text; empty when the template ends a turn
    /// with nothing trained. Generation stops on them.
    /// </summary>
    public int[] EndOfTurnIds()
    {
        const string content = "Hello.";
        ChatMessage[] probe = [new("user", "Hi."), new("assistant", content), new("user", "Hi."), new("assistant", content)];
        string? trained = MarkedPieces(probe).FirstOrDefault(p => p.Trained).Text;
        int at = trained?.LastIndexOf(content, StringComparison.Ordinal) ?? -1;
        return at < 0 ? [] : Encode(trained![(at + content.Length)..]);
    }

    private List<(string Text, bool Trained)> MarkedPieces(IReadOnlyList<ChatMessage> messages)
    {
        var (text, spans) = ChatAssistantSpans.Find(_template, messages, _tokenizer);
        var pieces = new List<(string, bool)>();
        int position = 0;
        foreach (var (start, end) in spans)
        {
            if (start > position)
                pieces.Add((text[position..start], false));
            pieces.Add((text[start..end], true));
            position = end;
        }
        if (position < text.Length)
            pieces.Add((text[position..], false));
        return pieces;
    }

    /// <summary>Encodes text, with the bos/eos markers the template wrote as the tokenizer's ids.</summary>
    private int[] Encode(string text)
    {
        var ids = new List<int>();
        int position = 0;
        while (position < text.Length)
        {
            int bos = text.IndexOf(ChatTemplate.BosMarker, position, StringComparison.Ordinal);
            int eos = text.IndexOf(ChatTemplate.EosMarker, position, StringComparison.Ordinal);
            int next = bos < 0 ? eos : eos < 0 ? bos : Math.Min(bos, eos);
            if (next < 0)
            {
                ids.AddRange(_tokenizer.Encode(text[position..]));
                break;
            }
            if (next > position)
                ids.AddRange(_tokenizer.Encode(text[position..next]));
            ids.Add(next == bos ? _tokenizer.BosId!.Value : _tokenizer.EosId!.Value);
            position = next + (next == bos ? ChatTemplate.BosMarker.Length : ChatTemplate.EosMarker.Length);
        }
        return ids.ToArray();
    }

    /// <summary>A template error for a record, as the one sentence a user sees.</summary>
    public static UserErrorException RecordError(string location, ChatTemplate template, JinjaException e) => e.Kind == JinjaErrorKind.Raised
        ? new UserErrorException($"{location}: {template.Name} refuses this conversation: \"{e.Message}\"; fix the record or remove it.", e)
        : new UserErrorException($"{location}: {template.Name} cannot be rendered for this conversation ({e.Message}); give another chat template.", e);
}
