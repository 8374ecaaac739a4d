using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// A pre-tokenizer regex (written for Rust's Oniguruma/fancy-regex, which match Unicode scalar values) run with .NET,
/// which matches UTF-16 code units. A character outside the BMP is two code units that .NET classes as surrogates
/// (category Cs), so `\p{L}` would not match 𠀀 (U+20000, a CJK letter) while Rust's does. To match like Rust, every
/// surrogate pair is replaced by one BMP stand-in character of the same Unicode general category before matching,
/// and match bounds are mapped back to the original string. The stand-ins are never ASCII, whitespace or a digit
/// 0-9, so no literal in the shipped patterns (apostrophe contractions, \r, \n, space) can match them.
/// Strings without surrogates (nearly all text) are matched directly.
/// </summary>
internal sealed class AstralSafeRegex
{
    private readonly Regex _regex;

    public AstralSafeRegex(string pattern)
    {
        // CultureInvariant keeps (?i:...) independent of the machine's culture; ECMAScript would break \p{..}.
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    /// <summary>Appends (start, length) of every match of the pattern in text, in order, non-overlapping.</summary>
    public void Matches(string text, List<(int Start, int Length)> matches)
    {
        int firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            for (Match m = _regex.Match(text); m.Success; m = m.NextMatch())
                if (m.Length > 0)
                    matches.Add((m.Index, m.Length));
            return;
        }

        // originalIndex[i] = index in text of stand-in character i; one extra entry for the end.
        var mapped = new StringBuilder(text.Length);
        var originalIndex = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            originalIndex.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int codePoint = char.ConvertToUtf32(text[i], text[i + 1]);
                mapped.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(codePoint)));
                i++;
            }
            else
            {
                mapped.Append(text[i]);
            }
        }
        originalIndex.Add(text.Length);
        for (Match m = _regex.Match(mapped.ToString()); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0)
                continue;
            int start = originalIndex[m.Index];
            int end = originalIndex[m.Index + m.Length];
            matches.Add((start, end - start));
        }
    }

    /// <summary>A BMP character of the given category, chosen so no shipped pattern literal can match it.</summary>
    private static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => '\u00C0',      // À
        UnicodeCategory.LowercaseLetter => '\u00E0',      // à
        UnicodeCategory.TitlecaseLetter => '\u01C5',      // ǅ
        UnicodeCategory.ModifierLetter => '\u02B0',       // ʰ
        UnicodeCategory.OtherLetter => '\u00AA',          // ª
        UnicodeCategory.DecimalDigitNumber => '\u0660',   // ٠ (Arabic-Indic zero, not 0-9)
        UnicodeCategory.LetterNumber => '\u2160',         // Ⅰ
        UnicodeCategory.OtherNumber => '\u00B2',          // ²
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.MathSymbol => '\u00AC',           // ¬
        UnicodeCategory.CurrencySymbol => '\u00A2',       // ¢
        UnicodeCategory.ModifierSymbol => '\u00B4',       // ´
        UnicodeCategory.OtherSymbol => '\u00A9',          // ©
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.OtherPunctuation => '\u00A1',     // ¡
        UnicodeCategory.Format => '\u00AD',               // soft hyphen
        UnicodeCategory.OtherNotAssigned => '\u0378',
        _ => '\uE000',                                    // private use (Co) for everything else
    };
}
