using FineTune.Trainer.Tokenizers.Normalization;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// The `normalizer` of a tokenizer.json: NFC (Qwen2), Prepend + Replace (Llama 2 / TinyLlama, which turn spaces
/// into '▁'), Lowercase, and Sequence of these. Other normalizers (NFD, NFKC, BertNormalizer, Precompiled, ...)
/// are rejected when loading, naming the type. Applied to each piece of text between added tokens.
/// reference: huggingface/tokenizers tokenizers/src/normalizers/{unicode,prepend,replace,utils}.rs.
/// </summary>
internal sealed class TextNormalizer
{
    private enum StepKind { Nfc, Prepend, Replace, Lowercase }

    private readonly record struct Step(StepKind Kind, string Argument, string Replacement);

    private readonly Step[] _steps;

    private TextNormalizer(Step[] steps) => _steps = steps;

    public static TextNormalizer Nfc() => new([new Step(StepKind.Nfc, "", "")]);
    public static TextNormalizer Prepend(string prefix) => new([new Step(StepKind.Prepend, prefix, "")]);
    public static TextNormalizer Replace(string pattern, string content) => new([new Step(StepKind.Replace, pattern, content)]);
    public static TextNormalizer Lowercase() => new([new Step(StepKind.Lowercase, "", "")]);
    public static TextNormalizer Sequence(IEnumerable<TextNormalizer> parts) => new(parts.SelectMany(p => p._steps).ToArray());

    public string Normalize(string text)
    {
        foreach (Step step in _steps)
        {
            text = step.Kind switch
            {
                StepKind.Nfc => UnicodeNfc.Normalize(text),
                // Prepend only applies to non-empty text (prepend.rs: `if !normalized.is_empty()`).
                StepKind.Prepend => text.Length == 0 ? text : step.Argument + text,
                StepKind.Replace => text.Replace(step.Argument, step.Replacement, StringComparison.Ordinal),
                StepKind.Lowercase => text.ToLowerInvariant(),
                _ => throw new InvalidOperationException($"unknown normalizer step {step.Kind}"),
            };
        }
        return text;
    }
}
