using FineTune.Trainer.Jinja;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Finds, in a conversation rendered by any chat template, the text each assistant turn trains on: what the model
/// must write after the prompt, through the turn's end marker. Templates are opaque Jinja, so the spans come from
/// renders of the conversation's prefixes, never from knowing the format. For assistant turn i:
/// <list type="bullet">
/// <item>T = render(messages[..i+1]) and D = the same with the turn's content replaced by a marker: the content is
/// where T and D differ (their common prefix and suffix are the template's frame around it).</item>
/// <item>The span starts where the generation prompt P = render(messages[..i], add_generation_prompt) ends, when T
/// starts with P (the header that prompt gives is not trained; a template that gives none trains its header, which
/// the model then has to write); otherwise where the content starts.</item>
/// <item>It ends after what the template writes behind the content both when the conversation ends there (T) and
/// when it goes on (the full render F), less trailing whitespace: "&lt;|im_end|&gt;" but not the "\n" after it,
/// "&lt;|eot_id|&gt;", "&lt;/s&gt;", "&lt;end_of_turn&gt;"; a final turn also trains what ends the conversation
/// (Phi-3's eos_token).</item>
/// </list>
/// F must hold T's text up to the content (a template may not rewrite an earlier turn once later turns follow, as
/// templates that drop earlier reasoning do); when it does not, the content is looked up in F after the previous span,
/// and a conversation where it cannot be found is refused. A template that writes nothing behind a final assistant
/// turn (Qwen1.5-Chat's, which writes "&lt;|im_end|&gt;" only when more follows or with add_generation_prompt) gets
/// the end of render(messages[..i+1], add_generation_prompt) instead for turns that are not last; its last turn
/// trains no end marker, because the rendered text has none.
/// reference: axolotl prompt_strategies/chat_template.py find_turn (the content-diff idea); transformers
/// apply_chat_template(return_assistant_tokens_mask) (what counts as assistant text).
/// </summary>
internal static class ChatAssistantSpans
{
    private const string ContentMarker = "\uE002content\uE003";

    /// <summary>The full render (marked) and the [start, end) character range of each assistant turn in it.</summary>
    public static (string Text, List<(int Start, int End)> Spans) Find(ChatTemplate template, IReadOnlyList<ChatMessage> messages, ITokenizer tokenizer)
    {
        string full = template.RenderMarked(messages, addGenerationPrompt: false, tokenizer);
        var spans = new List<(int, int)>();
        int cursor = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant")
                continue;
            List<ChatMessage> through = messages.Take(i + 1).ToList();
            string turn = template.RenderMarked(through, addGenerationPrompt: false, tokenizer);
            through[i] = through[i] with { Content = ContentMarker };
            string dummy = template.RenderMarked(through, addGenerationPrompt: false, tokenizer);
            int contentStart = CommonPrefix(turn, 0, dummy, 0);
            int contentEnd = Math.Max(contentStart, turn.Length - CommonSuffix(turn, dummy, contentStart));

            int start = contentStart;
            string? prompt = TryRender(template, messages.Take(i).ToList(), tokenizer);
            if (prompt is not null && prompt.Length <= contentStart && turn.StartsWith(prompt, StringComparison.Ordinal))
                start = prompt.Length;

            int shift; // where turn's text [0, contentEnd) sits in full, as an offset
            if (string.CompareOrdinal(full, 0, turn, 0, contentEnd) == 0 && contentEnd <= full.Length)
            {
                shift = 0;
            }
            else
            {
                string content = turn[contentStart..contentEnd];
                int found = content.Length == 0 ? -1 : full.IndexOf(content, cursor, StringComparison.Ordinal);
                if (found < 0)
                    throw new UserErrorException($"{template.Name} writes assistant turn {i + 1} differently once later turns follow it, so the tokens to train on cannot be found; train on shorter conversations or give a template that renders earlier turns unchanged.");
                shift = found - contentStart;
                start = Math.Max(start, contentStart); // the prompt prefix no longer lines up
            }
            int endInFull = contentEnd + shift;
            int tail = CommonPrefix(full, endInFull, turn, contentEnd);
            if (tail == 0 && endInFull < full.Length && TryRender(template, messages.Take(i + 1).ToList(), tokenizer) is string continued
                && string.CompareOrdinal(continued, 0, turn, 0, contentEnd) == 0)
                tail = CommonPrefix(full, endInFull, continued, contentEnd); // Qwen1.5 ends a final turn only when the prompt goes on
            int end = endInFull + tail;
            while (end > endInFull && PythonText.IsSpace(full[end - 1]))
                end--;
            start = Math.Max(start + shift, cursor);
            if (end > start)
                spans.Add((start, end));
            cursor = Math.Max(cursor, end);
        }
        return (full, spans);
    }

    /// <summary>The generation prompt before turn i, or null when the template refuses it (some reject a conversation not ending in a user turn).</summary>
    private static string? TryRender(ChatTemplate template, List<ChatMessage> before, ITokenizer tokenizer)
    {
        try
        {
            return template.RenderMarked(before, addGenerationPrompt: true, tokenizer);
        }
        catch (JinjaException e) when (e.Kind is JinjaErrorKind.Raised or JinjaErrorKind.Runtime)
        {
            return null;
        }
    }

    private static int CommonPrefix(string a, int aStart, string b, int bStart)
    {
        int n = 0;
        while (aStart + n < a.Length && bStart + n < b.Length && a[aStart + n] == b[bStart + n])
            n++;
        return n;
    }

    /// <summary>Common suffix length of a and b, not reaching into a before <paramref name="aFloor"/>.</summary>
    private static int CommonSuffix(string a, string b, int aFloor)
    {
        int n = 0;
        while (a.Length - n - 1 >= aFloor && b.Length - n - 1 >= aFloor && a[a.Length - n - 1] == b[b.Length - n - 1])
            n++;
        return n;
    }
}
