using System.Globalization;
using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// Python str semantics that C# strings lack: whitespace as str.isspace() sees it (str.strip() strips Unicode
/// whitespace and \x1c-\x1f, which char.IsWhiteSpace misses), lengths, indices and slices in code points (an emoji is
/// one character in Python, two UTF-16 units here), repr() of strings and floats.
/// </summary>
internal static class PythonText
{
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    public static string Strip(string text, string? chars = null) => RStrip(LStrip(text, chars), chars);

    public static string LStrip(string text, string? chars = null)
    {
        int start = 0;
        while (start < text.Length && Stripped(text[start], chars))
            start++;
        return text[start..];
    }

    public static string RStrip(string text, string? chars = null)
    {
        int end = text.Length;
        while (end > 0 && Stripped(text[end - 1], chars))
            end--;
        return text[..end];
    }

    private static bool Stripped(char c, string? chars) => chars is null ? IsSpace(c) : chars.Contains(c);

    private static bool HasSurrogates(string text) => text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>The code points of <paramref name="text"/> as strings (Python's iteration over a str).</summary>
    public static List<string> CodePoints(string text)
    {
        var points = new List<string>(text.Length);
        if (!HasSurrogates(text))
        {
            foreach (char c in text)
                points.Add(c.ToString());
            return points;
        }
        foreach (Rune rune in text.EnumerateRunes())
            points.Add(rune.ToString());
        return points;
    }

    public static int Length(string text) => HasSurrogates(text) ? text.EnumerateRunes().Count() : text.Length;

    /// <summary>text[start:stop:step] with Python's index rules (negative from the end, clamped, step may be negative).</summary>
    public static string Slice(string text, long? start, long? stop, long? step)
    {
        List<string> points = CodePoints(text);
        var sb = new StringBuilder(text.Length);
        foreach (int i in PythonSlice.Indices(points.Count, start, stop, step))
            sb.Append(points[i]);
        return sb.ToString();
    }

    /// <summary>Python's repr() of a str: single quotes unless the text holds ' and no ", with escapes.</summary>
    public static string Repr(string text)
    {
        char quote = text.Contains('\'') && !text.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(text.Length + 2).Append(quote);
        foreach (Rune rune in text.EnumerateRunes())
        {
            int c = rune.Value;
            if (c == quote || c == '\\')
                sb.Append('\\').Append((char)c);
            else if (c == '\n')
                sb.Append("\\n");
            else if (c == '\r')
                sb.Append("\\r");
            else if (c == '\t')
                sb.Append("\\t");
            else if (c < 0x20 || c == 0x7f)
                sb.Append(CultureInfo.InvariantCulture, $"\\x{c:x2}");
            else
                sb.Append(rune.ToString());
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>
    /// Python's repr() of a float: the shortest digits that round-trip, in fixed notation when the decimal exponent
    /// is in (-4, 16] (with ".0" for whole numbers), else as d.ddde+XX.
    /// reference: CPython Python/pystrtod.c format_float_short ('r' mode).
    /// </summary>
    public static string FloatRepr(double value)
    {
        if (double.IsNaN(value))
            return "nan";
        if (double.IsInfinity(value))
            return value > 0 ? "inf" : "-inf";
        // the shortest round-trip digits ("R"), rebuilt around their decimal exponent
        string shortest = value.ToString("R", CultureInfo.InvariantCulture);
        bool negative = shortest.StartsWith('-') || (value == 0 && double.IsNegative(value));
        string body = shortest.TrimStart('-');
        int exponent = 0;
        int e = body.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(body[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            body = body[..e];
        }
        int dot = body.IndexOf('.');
        string digits = dot >= 0 ? body.Remove(dot, 1) : body;
        int pointPosition = (dot >= 0 ? dot : body.Length) + exponent; // value = 0.digits... * 10^pointPosition after trimming
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.TrimStart('0');
        pointPosition -= leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
            return negative ? "-0.0" : "0.0";
        string sign = negative ? "-" : "";
        if (pointPosition > -4 && pointPosition <= 16)
        {
            if (pointPosition <= 0)
                return $"{sign}0.{new string('0', -pointPosition)}{digits}";
            if (pointPosition >= digits.Length)
                return $"{sign}{digits}{new string('0', pointPosition - digits.Length)}.0";
            return $"{sign}{digits[..pointPosition]}.{digits[pointPosition..]}";
        }
        int shown = pointPosition - 1;
        string mantissa = digits.Length == 1 ? digits : $"{digits[0]}.{digits[1..]}";
        return $"{sign}{mantissa}e{(shown < 0 ? '-' : '+')}{Math.Abs(shown):00}";
    }

    /// <summary>str.capitalize(): the first character upper case, the rest lower case.</summary>
    public static string Capitalize(string text) =>
        text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..].ToLowerInvariant();

    /// <summary>str.title(): each run of letters starts upper case and continues lower case.</summary>
    public static string Title(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool previousCased = false;
        foreach (char c in text)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }
        return sb.ToString();
    }
}
