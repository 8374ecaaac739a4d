using System.Text;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// The `decoder` of a tokenizer.json: turns the token strings of ids back into text. ByteLevel (alphabet characters
/// back to bytes, then UTF-8; invalid sequences become U+FFFD), Replace (e.g. '▁' to ' '), ByteFallback (runs of
/// `&lt;0xHH&gt;` tokens back to UTF-8), Fuse (join all tokens), Strip (remove up to N leading/trailing copies of a
/// character from each token), Metaspace ('▁' to ' ', dropping the space prepended to the first token), and
/// Sequence. reference: huggingface/tokenizers tokenizers/src/decoders/*.rs (decode_chain works token by token).
/// </summary>
internal sealed class TokenDecoder
{
    private enum StepKind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace }

    private sealed record Step(StepKind Kind, string Pattern, string Content, int Start, int Stop, bool PrependScheme);

    private readonly Step[] _steps;

    private TokenDecoder(Step[] steps) => _steps = steps;

    public static TokenDecoder None() => new([]);
    public static TokenDecoder ByteLevel() => new([new Step(StepKind.ByteLevel, "", "", 0, 0, false)]);
    public static TokenDecoder Replace(string pattern, string content) => new([new Step(StepKind.Replace, pattern, content, 0, 0, false)]);
    public static TokenDecoder ByteFallback() => new([new Step(StepKind.ByteFallback, "", "", 0, 0, false)]);
    public static TokenDecoder Fuse() => new([new Step(StepKind.Fuse, "", "", 0, 0, false)]);
    public static TokenDecoder Strip(string content, int start, int stop) => new([new Step(StepKind.Strip, "", content, start, stop, false)]);
    public static TokenDecoder Metaspace(string replacement, bool stripFirstSpace) => new([new Step(StepKind.Metaspace, replacement, " ", 0, 0, stripFirstSpace)]);
    public static TokenDecoder Sequence(IEnumerable<TokenDecoder> parts) => new(parts.SelectMany(p => p._steps).ToArray());

    public string Decode(List<string> tokens)
    {
        foreach (Step step in _steps)
        {
            tokens = step.Kind switch
            {
                StepKind.ByteLevel => [DecodeByteLevel(tokens)],
                StepKind.Replace => tokens.Select(t => t.Replace(step.Pattern, step.Content, StringComparison.Ordinal)).ToList(),
                StepKind.ByteFallback => DecodeByteFallback(tokens),
                StepKind.Fuse => [string.Concat(tokens)],
                StepKind.Strip => tokens.Select(t => StripToken(t, step.Content, step.Start, step.Stop)).ToList(),
                StepKind.Metaspace => tokens.Select((t, i) =>
                {
                    string replaced = t.Replace(step.Pattern, " ", StringComparison.Ordinal);
                    return i == 0 && step.PrependScheme && replaced.StartsWith(' ') ? replaced[1..] : replaced;
                }).ToList(),
                _ => throw new InvalidOperationException($"unknown decoder step {step.Kind}"),
            };
        }
        return string.Concat(tokens);
    }

    /// <summary>Concatenates tokens and maps alphabet characters to bytes; other characters keep their UTF-8 bytes.</summary>
    private static string DecodeByteLevel(List<string> tokens)
    {
        var bytes = new List<byte>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (string token in tokens)
        {
            for (int i = 0; i < token.Length; i++)
            {
                int b = ByteLevelAlphabet.ByteOf(token[i]);
                if (b >= 0)
                {
                    bytes.Add((byte)b);
                    continue;
                }
                int charLength = char.IsHighSurrogate(token[i]) && i + 1 < token.Length ? 2 : 1;
                int count = Encoding.UTF8.GetBytes(token.AsSpan(i, charLength), utf8);
                for (int k = 0; k < count; k++)
                    bytes.Add(utf8[k]);
                i += charLength - 1;
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>byte_fallback.rs: a run of &lt;0xHH&gt; tokens becomes its UTF-8 text, or one U+FFFD per byte if invalid.</summary>
    private static List<string> DecodeByteFallback(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0)
                return;
            try
            {
                output.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(pending.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                output.AddRange(Enumerable.Repeat("\uFFFD", pending.Count));
            }
            pending.Clear();
        }
        foreach (string token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte value))
            {
                pending.Add(value);
                continue;
            }
            Flush();
            output.Add(token);
        }
        Flush();
        return output;
    }

    private static string StripToken(string token, string content, int start, int stop)
    {
        if (content.Length != 1)
            return token;
        int from = 0, to = token.Length;
        while (from < to && from < start && token[from] == content[0])
            from++;
        while (to > from && token.Length - to < stop && token[to - 1] == content[0])
            to--;
        return token[from..to];
    }
}
