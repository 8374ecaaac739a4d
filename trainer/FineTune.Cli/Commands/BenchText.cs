using System.Text;
using FineTune.Trainer.Data;

namespace FineTune.Cli.Commands;

/// <summary>Deterministic text for `finetune tokenize --bench`: English-like words, numbers, code-like punctuation,
/// newlines and runs of spaces, with some accented, CJK and emoji characters, cut into documents.</summary>
internal static class BenchText
{
    private static readonly string[] s_words =
    [
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
        "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
        "model", "training", "gradient", "optimizer", "tokenizer", "sequence", "attention", "memory", "learning",
        "internationalization", "café", "naïve", "Straße", "über", "日本語", "中文", "한국어", "😀", "🚀", "x", "y", "z",
        "It's", "don't", "we'll", "I'm", "Hello", "World", "def", "return", "self", "None", "{", "}", "()", "=>",
    ];

    private static readonly string[] s_separators = [" ", " ", " ", " ", " ", ", ", ". ", "\n", "  ", "\t", ": ", "\n\n", " = ", "; "];

    public static string Generate(int charCount)
    {
        var random = new SplitMix64(20260522);
        var text = new StringBuilder(charCount + 64);
        while (text.Length < charCount)
        {
            ulong pick = random.NextBelow(20);
            if (pick == 0)
                text.Append(random.NextBelow(100_000));
            else
                text.Append(s_words[random.NextBelow((ulong)s_words.Length)]);
            text.Append(s_separators[random.NextBelow((ulong)s_separators.Length)]);
        }
        return text.ToString();
    }

    /// <summary>Documents of about documentChars characters cut from seed (repeated) until byteBudget UTF-8 bytes.</summary>
    public static List<string> Documents(string seed, long byteBudget, int documentChars)
    {
        var documents = new List<string>();
        long bytes = 0;
        int start = 0;
        while (bytes < byteBudget)
        {
            int length = Math.Min(documentChars, seed.Length - start);
            // Never cut a surrogate pair in half: the round-trip check needs valid text.
            if (length < seed.Length - start && char.IsHighSurrogate(seed[start + length - 1]))
                length--;
            string document = seed.Substring(start, length);
            documents.Add(document);
            bytes += Encoding.UTF8.GetByteCount(document);
            start += length;
            if (start >= seed.Length)
                start = 0;
        }
        return documents;
    }
}
