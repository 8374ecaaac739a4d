using System.Globalization;
using System.Text.RegularExpressions;

namespace FineTune.IO.Bench;

/// <summary>Parses byte counts written by people: "1GiB", "512MiB", "64KiB", "4096" (binary units; plain numbers are bytes).</summary>
public static class ByteCountText
{
    public static long Parse(string option, string text)
    {
        Match match = Regex.Match(text.Trim(), @"^(\d+)\s*(B|KiB|MiB|GiB|TiB)?$", RegexOptions.IgnoreCase);
        if (!match.Success)
            throw new UserErrorException($"{option} '{text}' is not a byte count; write e.g. 1GiB, 512MiB or 4096.");
        int shift = match.Groups[2].Value.ToUpperInvariant() switch { "KIB" => 10, "MIB" => 20, "GIB" => 30, "TIB" => 40, _ => 0 };
        if (!long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value > (long.MaxValue >> shift))
            throw new UserErrorException($"{option} '{text}' is too large.");
        return value << shift;
    }
}
