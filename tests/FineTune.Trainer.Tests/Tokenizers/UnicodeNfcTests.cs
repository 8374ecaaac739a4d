using FineTune.Trainer.Tokenizers.Normalization;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>NFC against Python's unicodedata.normalize('NFC', s) (Unicode 14.0), outputs written as code points.</summary>
public sealed class UnicodeNfcTests
{
    [Theory]
    [InlineData("e\u0301", "\u00E9")]                       // compose
    [InlineData("a\u0302\u0323", "\u1EAD")]                 // reorder (ccc 220 before 230), then compose both
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]            // Hangul L V T
    [InlineData("\u212B", "\u00C5")]                        // singleton decomposition (Angstrom sign)
    [InlineData("e\u0301\u0301", "\u00E9\u0301")]           // second acute is blocked
    [InlineData("\u0915\u093C", "\u0915\u093C")]            // composition exclusion stays decomposed
    [InlineData("a\u0328\u0301", "\u0105\u0301")]           // ogonek composes first, acute then has no composite
    [InlineData("o\u0308\u0304\u0323", "\u1ECD\u0308\u0304")]
    [InlineData("plain ascii", "plain ascii")]
    [InlineData("\U0001F600 e\u0301", "\U0001F600 \u00E9")] // astral characters pass through
    public void MatchesPythonUnicodedata(string input, string expected)
    {
        Assert.Equal(expected, UnicodeNfc.Normalize(input));
    }
}
