using System.Text;

namespace FineTune.Trainer.Tokenizers.Normalization;

/// <summary>
/// Unicode Normalization Form C, implemented here because .NET's string.Normalize is a silent no-op for non-ASCII
/// text under InvariantGlobalization (which FineTune builds with) and otherwise depends on the machine's ICU.
/// The algorithm is UAX #15: full canonical decomposition (Hangul syllables algorithmically), canonical ordering
/// of combining marks, then canonical composition. Tables come from UnicodeNfcTables.cs (generated).
/// reference: https://www.unicode.org/reports/tr15/ sections 3, 9 and 10; Unicode 3.12 (Hangul).
/// </summary>
internal static class UnicodeNfc
{
    private const int HangulSBase = 0xAC00, HangulLBase = 0x1100, HangulVBase = 0x1161, HangulTBase = 0x11A7;
    private const int HangulLCount = 19, HangulVCount = 21, HangulTCount = 28;
    private const int HangulNCount = HangulVCount * HangulTCount, HangulSCount = HangulLCount * HangulNCount;

    private static readonly Dictionary<int, int> s_combiningClass = BuildCombiningClasses();
    private static readonly Dictionary<int, (int First, int Second)> s_decomposition = new();
    private static readonly Dictionary<long, int> s_composition = BuildDecompositionsAndCompositions();

    /// <summary>The NFC form of text; returns text itself when nothing can change (every char below U+0300).</summary>
    public static string Normalize(string text)
    {
        // Every character below U+0300 is NFC-stable, has combining class 0 and is never the second half of a
        // canonical composition (all such second halves are U+0300 or above), so such text is already NFC.
        if (!text.AsSpan().ContainsAnyExceptInRange('\u0000', '\u02FF'))
            return text;

        var codePoints = new List<int>(text.Length);
        foreach (Rune rune in text.EnumerateRunes())
            Decompose(rune.Value, codePoints);
        SortCombiningMarks(codePoints);
        Compose(codePoints);

        var result = new StringBuilder(text.Length);
        foreach (int cp in codePoints)
            result.Append(char.ConvertFromUtf32(cp));
        return result.ToString();
    }

    private static int CombiningClass(int codePoint) =>
        s_combiningClass.TryGetValue(codePoint, out int value) ? value : 0;

    private static void Decompose(int codePoint, List<int> output)
    {
        int sIndex = codePoint - HangulSBase;
        if (sIndex >= 0 && sIndex < HangulSCount)
        {
            output.Add(HangulLBase + sIndex / HangulNCount);
            output.Add(HangulVBase + sIndex % HangulNCount / HangulTCount);
            int t = sIndex % HangulTCount;
            if (t != 0)
                output.Add(HangulTBase + t);
            return;
        }
        if (!s_decomposition.TryGetValue(codePoint, out var parts))
        {
            output.Add(codePoint);
            return;
        }
        Decompose(parts.First, output);
        if (parts.Second >= 0)
            Decompose(parts.Second, output);
    }

    /// <summary>Stable sort of each run of non-starters by combining class (canonical ordering algorithm).</summary>
    private static void SortCombiningMarks(List<int> codePoints)
    {
        for (int i = 1; i < codePoints.Count; i++)
        {
            int cc = CombiningClass(codePoints[i]);
            if (cc == 0)
                continue;
            int j = i;
            while (j > 0 && CombiningClass(codePoints[j - 1]) > cc)
            {
                (codePoints[j - 1], codePoints[j]) = (codePoints[j], codePoints[j - 1]);
                j--;
            }
        }
    }

    /// <summary>Canonical composition; mirrors the sample code of UAX #15 section 10 (lastClass 256 = blocked).</summary>
    private static void Compose(List<int> codePoints)
    {
        if (codePoints.Count == 0)
            return;
        int starterIndex = 0;
        int lastClass = CombiningClass(codePoints[0]) == 0 ? 0 : 256;
        int write = 1;
        for (int read = 1; read < codePoints.Count; read++)
        {
            int cp = codePoints[read];
            int cc = CombiningClass(cp);
            // Not blocked: nothing between the starter and cp, or every mark between has a lower class.
            if ((lastClass < cc || lastClass == 0) && TryCompose(codePoints[starterIndex], cp, out int composite))
            {
                codePoints[starterIndex] = composite;
                continue;
            }
            if (cc == 0)
                starterIndex = write;
            lastClass = cc;
            codePoints[write++] = cp;
        }
        codePoints.RemoveRange(write, codePoints.Count - write);
    }

    private static bool TryCompose(int first, int second, out int composite)
    {
        int lIndex = first - HangulLBase, vIndex = second - HangulVBase;
        if (lIndex >= 0 && lIndex < HangulLCount && vIndex >= 0 && vIndex < HangulVCount)
        {
            composite = HangulSBase + (lIndex * HangulVCount + vIndex) * HangulTCount;
            return true;
        }
        int sIndex = first - HangulSBase, tIndex = second - HangulTBase;
        if (sIndex >= 0 && sIndex < HangulSCount && sIndex % HangulTCount == 0 && tIndex > 0 && tIndex < HangulTCount)
        {
            composite = first + tIndex;
            return true;
        }
        return s_composition.TryGetValue(((long)first << 21) | (uint)second, out composite);
    }

    private static Dictionary<int, int> BuildCombiningClasses()
    {
        ReadOnlySpan<int> table = UnicodeNfcTables.CombiningClasses;
        var map = new Dictionary<int, int>(table.Length / 2);
        for (int i = 0; i < table.Length; i += 2)
            map[table[i]] = table[i + 1];
        return map;
    }

    private static Dictionary<long, int> BuildDecompositionsAndCompositions()
    {
        ReadOnlySpan<int> table = UnicodeNfcTables.Decompositions;
        var compositions = new Dictionary<long, int>();
        for (int i = 0; i < table.Length; i += 4)
        {
            s_decomposition[table[i]] = (table[i + 1], table[i + 2]);
            if (table[i + 3] == 1)
                compositions[((long)table[i + 1] << 21) | (uint)table[i + 2]] = table[i];
        }
        return compositions;
    }
}
