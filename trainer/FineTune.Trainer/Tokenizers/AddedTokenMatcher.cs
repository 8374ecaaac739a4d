namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// Splits raw text into segments that are either an added token or plain text for the normalizer/pre-tokenizer/BPE.
/// Matching is leftmost-longest over all added tokens, like the Aho-Corasick matcher of
/// huggingface/tokenizers tokenizers/src/tokenizer/added_vocabulary.rs. Unlike it, normalized:true tokens are also
/// matched on the raw text rather than on the normalized text; the two agree whenever normalizing leaves the
/// token's text alone (true for every shipped chat/special marker, which are ASCII).
/// </summary>
internal sealed class AddedTokenMatcher
{
    /// <summary>A segment of text: an added token (TokenId set) or plain text (TokenId null).</summary>
    public readonly record struct Segment(int? TokenId, string Text);

    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    public List<Segment> Split(string text)
    {
        var segments = new List<Segment>();
        if (IsEmpty)
        {
            segments.Add(new Segment(null, text));
            return segments;
        }
        int plainStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            AddedToken? match = _byFirstChar.TryGetValue(text[i], out AddedToken[]? candidates)
                ? candidates.FirstOrDefault(t => Matches(text, i, t))
                : null;
            if (match is null)
            {
                i++;
                continue;
            }
            int matchStart = i, matchEnd = i + match.Content.Length;
            if (match.LeftStrip)
                while (matchStart > plainStart && char.IsWhiteSpace(text[matchStart - 1]))
                    matchStart--;
            if (match.RightStrip)
                while (matchEnd < text.Length && char.IsWhiteSpace(text[matchEnd]))
                    matchEnd++;
            if (matchStart > plainStart)
                segments.Add(new Segment(null, text[plainStart..matchStart]));
            segments.Add(new Segment(match.Id, match.Content));
            plainStart = i = matchEnd;
        }
        if (plainStart < text.Length)
            segments.Add(new Segment(null, text[plainStart..]));
        return segments;
    }

    private static bool Matches(string text, int index, AddedToken token)
    {
        if (string.CompareOrdinal(text, index, token.Content, 0, token.Content.Length) != 0)
            return false;
        if (!token.SingleWord)
            return true;
        int end = index + token.Content.Length;
        bool wordBefore = index > 0 && char.IsLetterOrDigit(text[index - 1]);
        bool wordAfter = end < text.Length && char.IsLetterOrDigit(text[end]);
        return !wordBefore && !wordAfter;
    }
}
