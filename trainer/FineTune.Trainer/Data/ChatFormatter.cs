using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Tokenizes a conversation in a <see cref="ChatTemplateKind"/>, training on assistant turns only: the assistant's
/// content and its end-of-turn marker (&lt;|im_end|&gt; or &lt;|eot_id|&gt;) carry labels, everything else (tokenizer
/// prefix, system and user turns, role headers, the "\n" after a ChatML turn) is -100. Each piece of text is encoded
/// separately so mask boundaries fall exactly between pieces; the markers are added tokens in the tokenizers that
/// use them (with the byte tokenizer they are plain bytes, which still trains correctly).
/// reference: Qwen2 / ChatML and Llama 3 chat templates (FORMATS.md 3.3); torchtune train_on_assistant masking.
/// Not done: default system prompts that some Jinja templates insert, tool calls.
/// </summary>
public sealed class ChatFormatter
{
    private readonly ITokenizer _tokenizer;
    private readonly ChatTemplateKind _kind;

    public ChatFormatter(ITokenizer tokenizer, ChatTemplateKind kind)
    {
        _tokenizer = tokenizer;
        _kind = kind;
    }

    /// <summary>The text pieces of a conversation with whether each is trained.</summary>
    public List<(string Text, bool Trained)> Pieces(IReadOnlyList<ChatMessage> messages)
    {
        var pieces = new List<(string, bool)>();
        foreach (ChatMessage message in messages)
        {
            bool trained = message.Role == "assistant";
            if (_kind == ChatTemplateKind.ChatMl)
            {
                pieces.Add(($"<|im_start|>{message.Role}\n", false));
                pieces.Add(($"{message.Content}<|im_end|>", trained));
                pieces.Add(("\n", false));
            }
            else
            {
                pieces.Add(($"<|start_header_id|>{message.Role}<|end_header_id|>\n\n", false));
                pieces.Add(($"{message.Content.Trim()}<|eot_id|>", trained));
            }
        }
        return pieces;
    }

    public TokenizedSample Format(IReadOnlyList<ChatMessage> messages)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        IReadOnlyList<int> prefix = _tokenizer.PrefixIds;
        if (prefix.Count == 0 && _kind == ChatTemplateKind.Llama3 && _tokenizer.BosId is int bos)
            prefix = [bos]; // the Llama 3 template starts with bos_token even when no post-processor adds it
        ids.AddRange(prefix);
        labels.AddRange(Enumerable.Repeat(TokenizedSample.IgnoreIndex, prefix.Count));
        foreach (var (text, trained) in Pieces(messages))
        {
            int[] pieceIds = _tokenizer.Encode(text);
            ids.AddRange(pieceIds);
            labels.AddRange(trained ? pieceIds : Enumerable.Repeat(TokenizedSample.IgnoreIndex, pieceIds.Length));
        }
        return new TokenizedSample(ids.ToArray(), labels.ToArray());
    }
}
