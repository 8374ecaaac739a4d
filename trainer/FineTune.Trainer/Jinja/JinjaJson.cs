using System.Globalization;
using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// The tojson filter as transformers defines it for chat templates: Python's json.dumps(x, ensure_ascii=False,
/// indent=None, separators=None, sort_keys=False), with no HTML escaping (Jinja's own tojson escapes &lt; &gt; &amp; ').
/// Separators default to ", " and ": ", or "," and ": " with an indent; an indent puts each item on its own line
/// (empty containers stay "[]" and "{}"). Floats are written as Python's repr; NaN and infinities as NaN/Infinity.
/// reference: transformers utils/chat_template_utils.py _compile_jinja_template.tojson; CPython Lib/json/encoder.py.
/// </summary>
internal static class JinjaJson
{
    public static string Dumps(object? value, bool ensureAscii, string? indent, string itemSeparator, string keySeparator, bool sortKeys)
    {
        var sb = new StringBuilder();
        Write(sb, value, ensureAscii, indent, itemSeparator, keySeparator, sortKeys, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? value, bool ascii, string? indent, string itemSep, string keySep, bool sortKeys, int level)
    {
        switch (value)
        {
            case null: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : PythonText.FloatRepr(d));
                return;
            case string s: WriteString(sb, s, ascii); return;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list, indent, itemSep, level, (item, nested) => Write(sb, item, ascii, indent, itemSep, keySep, sortKeys, nested));
                return;
            case JinjaDict dict:
                var pairs = dict.Select(p => (Key: KeyText(p.Key), p.Value)).ToList();
                if (sortKeys)
                    pairs.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
                WriteContainer(sb, '{', '}', pairs, indent, itemSep, level, (pair, nested) =>
                {
                    WriteString(sb, pair.Key, ascii);
                    sb.Append(keySep);
                    Write(sb, pair.Value, ascii, indent, itemSep, keySep, sortKeys, nested);
                });
                return;
            default:
                throw JinjaException.Runtime($"Object of type {JinjaValues.TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteContainer<T>(StringBuilder sb, char open, char close, IReadOnlyList<T> items, string? indent, string itemSep,
        int level, Action<T, int> writeItem)
    {
        sb.Append(open);
        if (items.Count == 0)
        {
            sb.Append(close);
            return;
        }
        string? inner = indent is null ? null : "\n" + string.Concat(Enumerable.Repeat(indent, level + 1));
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
                sb.Append(itemSep);
            if (inner is not null)
                sb.Append(inner);
            writeItem(items[i], level + 1);
        }
        if (indent is not null)
            sb.Append('\n').Append(string.Concat(Enumerable.Repeat(indent, level)));
        sb.Append(close);
    }

    /// <summary>json.dumps turns True/None/numbers used as keys into their JSON text.</summary>
    private static string KeyText(object key) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PythonText.FloatRepr(d),
        _ => throw JinjaException.Runtime($"keys must be str, int, float, bool or None, not {JinjaValues.TypeName(key)}"),
    };

    private static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e))
                        sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"); // UTF-16 units: a surrogate pair as two escapes, as Python does
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
