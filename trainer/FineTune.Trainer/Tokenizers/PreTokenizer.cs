using System.Text;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// The `pre_tokenizer` of a tokenizer.json: cuts normalized text into pieces that BPE encodes independently.
/// Supported: Split (regex or string pattern, behaviors Isolated and Removed; the Llama-3 and Qwen2 regexes),
/// ByteLevel (GPT-2 regex when use_regex, add_prefix_space, bytes mapped to <see cref="ByteLevelAlphabet"/>),
/// Metaspace (spaces to '▁', prepend_scheme always/first/never, split), Digits, and Sequence of these. Anything
/// else is rejected when loading. reference: huggingface/tokenizers tokenizers/src/pre_tokenizers/*.rs.
/// </summary>
internal sealed class PreTokenizer
{
    /// <summary>GPT-2's pattern, used by ByteLevel when use_regex is true (byte_level.rs).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private enum StepKind { SplitIsolated, SplitRemoved, ByteLevel, Metaspace }

    private sealed record Step(StepKind Kind, AstralSafeRegex? Regex, bool AddPrefixSpace, string Replacement,
        string PrependScheme, bool SplitOnReplacement);

    private readonly Step[] _steps;

    private PreTokenizer(Step[] steps) => _steps = steps;

    /// <summary>True when a ByteLevel step maps pieces to the byte alphabet (the BPE vocabulary is byte-level).</summary>
    public bool IsByteLevel => _steps.Any(s => s.Kind == StepKind.ByteLevel);

    public static PreTokenizer None() => new([]);

    public static PreTokenizer SplitByPattern(string regexPattern, bool removeMatches) =>
        new([new Step(removeMatches ? StepKind.SplitRemoved : StepKind.SplitIsolated, new AstralSafeRegex(regexPattern),
            false, "", "", false)]);

    public static PreTokenizer ByteLevel(bool addPrefixSpace, bool useRegex) =>
        new([new Step(StepKind.ByteLevel, useRegex ? new AstralSafeRegex(Gpt2Pattern) : null, addPrefixSpace, "", "", false)]);

    public static PreTokenizer Metaspace(string replacement, string prependScheme, bool split) =>
        new([new Step(StepKind.Metaspace, null, false, replacement, prependScheme, split)]);

    public static PreTokenizer Digits(bool individualDigits) =>
        SplitByPattern(individualDigits ? @"\p{N}" : @"\p{N}+", removeMatches: false);

    public static PreTokenizer Sequence(IEnumerable<PreTokenizer> parts) => new(parts.SelectMany(p => p._steps).ToArray());

    /// <summary>
    /// Cuts one normalized segment (text between added tokens) into pieces. <paramref name="isFirstSegment"/> is
    /// true for the segment at the very start of the input (Metaspace prepend_scheme "first").
    /// </summary>
    public List<string> Split(string segment, bool isFirstSegment)
    {
        var pieces = new List<string> { segment };
        var next = new List<string>();
        var matches = new List<(int Start, int Length)>();
        foreach (Step step in _steps)
        {
            next.Clear();
            foreach (string piece in pieces)
                Apply(step, piece, isFirstSegment, next, matches);
            (pieces, next) = (next, pieces);
        }
        return pieces;
    }

    private static void Apply(Step step, string piece, bool isFirstSegment, List<string> output,
        List<(int Start, int Length)> matches)
    {
        switch (step.Kind)
        {
            case StepKind.SplitIsolated:
            case StepKind.SplitRemoved:
                SplitByRegex(step.Regex!, piece, keepMatches: step.Kind == StepKind.SplitIsolated, output, matches);
                break;
            case StepKind.ByteLevel:
                // byte_level.rs: a space is prepended to a piece that does not start with one.
                if (step.AddPrefixSpace && !piece.StartsWith(' '))
                    piece = " " + piece;
                if (step.Regex is null)
                {
                    output.Add(ToByteAlphabet(piece));
                    break;
                }
                int first = output.Count;
                SplitByRegex(step.Regex, piece, keepMatches: true, output, matches);
                for (int i = first; i < output.Count; i++)
                    output[i] = ToByteAlphabet(output[i]);
                break;
            case StepKind.Metaspace:
                ApplyMetaspace(step, piece, isFirstSegment, output);
                break;
        }
    }

    /// <summary>Isolated: matches and the text between them become pieces; Removed: only the text between.</summary>
    private static void SplitByRegex(AstralSafeRegex regex, string piece, bool keepMatches, List<string> output,
        List<(int Start, int Length)> matches)
    {
        matches.Clear();
        regex.Matches(piece, matches);
        int position = 0;
        foreach (var (start, length) in matches)
        {
            if (start > position)
                output.Add(piece[position..start]);
            if (keepMatches)
                output.Add(piece.Substring(start, length));
            position = start + length;
        }
        if (position < piece.Length)
            output.Add(piece[position..]);
    }

    private static void ApplyMetaspace(Step step, string piece, bool isFirstSegment, List<string> output)
    {
        string replaced = piece.Replace(" ", step.Replacement, StringComparison.Ordinal);
        bool prepend = step.PrependScheme == "always" || (step.PrependScheme == "first" && isFirstSegment);
        if (prepend && !replaced.StartsWith(step.Replacement, StringComparison.Ordinal))
            replaced = step.Replacement + replaced;
        if (!step.SplitOnReplacement)
        {
            output.Add(replaced);
            return;
        }
        // metaspace.rs: split with MergedWithNext, so every piece but the first starts with the replacement.
        int start = 0;
        for (int i = 1; i <= replaced.Length; i++)
        {
            if (i == replaced.Length || string.CompareOrdinal(replaced, i, step.Replacement, 0, step.Replacement.Length) == 0)
            {
                if (i > start)
                    output.Add(replaced[start..i]);
                start = i;
            }
        }
    }

    /// <summary>UTF-8 bytes of text, each written as its byte-level alphabet character.</summary>
    public static string ToByteAlphabet(string text)
    {
        int byteCount = Encoding.UTF8.GetByteCount(text);
        byte[]? rented = byteCount > 1024 ? new byte[byteCount] : null;
        Span<byte> bytes = rented ?? stackalloc byte[byteCount];
        Encoding.UTF8.GetBytes(text, bytes);
        Span<char> chars = byteCount > 1024 ? new char[byteCount] : stackalloc char[byteCount];
        for (int i = 0; i < byteCount; i++)
            chars[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        return new string(chars);
    }
}
