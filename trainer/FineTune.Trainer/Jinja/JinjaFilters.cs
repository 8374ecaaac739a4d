using System.Globalization;
using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// The filters (<c>value | name(args)</c>) chat templates use, with Jinja2 3.1's semantics and argument names, and
/// tojson as transformers overrides it (<see cref="JinjaJson"/>). A name not listed here is refused when the template
/// is parsed, so nothing renders with an approximate filter.
/// reference: jinja2/filters.py (do_trim, do_default, do_join, do_map, select_or_reject, do_indent, ...).
/// </summary>
internal static class JinjaFilters
{
    private static readonly HashSet<string> s_names =
    [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "indent", "int",
        "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
        "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique",
        "upper", "wordcount",
    ];

    public static bool IsKnown(string name) => s_names.Contains(name);

    public static object? Apply(string name, object? value, JinjaArgs args)
    {
        object? result = name switch
        {
            "trim" => PythonText.Strip(Str(value), args.GetString(0, "chars")),
            "upper" => Str(value).ToUpperInvariant(),
            "lower" => Str(value).ToLowerInvariant(),
            "capitalize" => PythonText.Capitalize(Str(value)),
            "title" => PythonText.Title(Str(value)),
            "string" => Str(value),
            "safe" => value,
            "e" or "escape" => Escape(Str(value)),
            "length" or "count" => JinjaValues.Length(value),
            "wordcount" => (long)Str(value).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length,
            "d" or "default" => Default(value, args),
            "first" => JinjaValues.Iterate(value) is { Count: > 0 } f ? f[0] : new JinjaUndefined("No first item, sequence was empty."),
            "last" => JinjaValues.Iterate(value) is { Count: > 0 } l ? l[^1] : new JinjaUndefined("No last item, sequence was empty."),
            "list" => new List<object?>(JinjaValues.Iterate(value)),
            "reverse" => value is string s ? PythonText.Slice(s, null, null, -1) : Enumerable.Reverse(JinjaValues.Iterate(value)).ToList(),
            "items" => value is JinjaUndefined ? new List<object?>()
                : value is JinjaDict dict ? dict.Select(p => (object?)new JinjaTuple([p.Key, p.Value])).ToList()
                : throw JinjaException.Runtime($"items(): can only get item pairs from a mapping, not {JinjaValues.TypeName(value)}"),
            "join" => Join(value, args),
            "replace" => Replace(value, args),
            "int" => ToInt(value, args),
            "float" => ToFloat(value, args),
            "abs" => value switch { long n => (object)Math.Abs(n), double n => Math.Abs(n), bool b => b ? 1L : 0L, _ => throw TypeError("abs", value) },
            "round" => Round(value, args),
            "tojson" => ToJson(value, args),
            "indent" => Indent(value, args),
            "attr" => JinjaMembers.GetAttribute(value, args.GetString(0, "name") ?? ""),
            "map" => Map(value, args),
            "select" or "reject" => SelectOrReject(value, args, name == "select", byAttribute: false),
            "selectattr" or "rejectattr" => SelectOrReject(value, args, name == "selectattr", byAttribute: true),
            "sort" => Sort(value, args),
            "dictsort" => DictSort(value, args),
            "unique" => Unique(value, args),
            "sum" => Sum(value, args),
            "min" or "max" => MinMax(value, args, name == "max"),
            _ => throw JinjaException.Unsupported($"the filter '{name}'"),
        };
        if (name is not ("map" or "select" or "reject" or "selectattr" or "rejectattr"))
            args.Done();
        return result;
    }

    private static string Str(object? value) => JinjaValues.ToStr(value);

    private static JinjaException TypeError(string filter, object? value) =>
        value is JinjaUndefined u ? JinjaException.Runtime(u.Hint) : JinjaException.Runtime($"{filter}: unsupported value of type '{JinjaValues.TypeName(value)}'");

    /// <summary>markupsafe.escape: &amp; &lt; &gt; ' " as entities.</summary>
    private static string Escape(string text) => text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal);

    private static object? Default(object? value, JinjaArgs args)
    {
        object? fallback = args.Get(0, "default_value", "");
        bool boolean = args.GetBool(1, "boolean", false);
        return value is JinjaUndefined || (boolean && !JinjaValues.IsTruthy(value)) ? fallback : value;
    }

    private static string Join(object? value, JinjaArgs args)
    {
        string separator = args.GetString(0, "d", "") ?? "";
        string? attribute = args.GetString(1, "attribute");
        IEnumerable<object?> items = JinjaValues.Iterate(value);
        if (attribute is not null)
            items = items.Select(item => JinjaMembers.GetPath(item, attribute));
        return string.Join(separator, items.Select(Str));
    }

    private static string Replace(object? value, JinjaArgs args)
    {
        string text = Str(value), old = Str(args.Get(0, "old")), replacement = Str(args.Get(1, "new"));
        long? count = args.GetLong(2, "count");
        return JinjaMembers.PythonReplace(text, old, replacement, count ?? -1);
    }

    private static object? ToInt(object? value, JinjaArgs args)
    {
        object? fallback = args.Get(0, "default", 0L);
        long numberBase = args.GetLong(1, "base", 10) ?? 10;
        switch (value)
        {
            case long or bool: return value is bool b ? (b ? 1L : 0L) : value;
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
                string t = s.Trim().Replace("_", "");
                try
                {
                    return numberBase == 10 ? long.Parse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : Convert.ToInt64(t, (int)numberBase);
                }
                catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
                {
                    return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) && double.IsFinite(parsed)
                        ? (long)Math.Truncate(parsed) : fallback;
                }
            default: return fallback;
        }
    }

    private static object? ToFloat(object? value, JinjaArgs args)
    {
        object? fallback = args.Get(0, "default", 0.0);
        return value switch
        {
            long or bool or double => JinjaValues.ToDouble(value),
            string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
            _ => fallback,
        };
    }

    private static object? Round(object? value, JinjaArgs args)
    {
        long precision = args.GetLong(0, "precision", 0) ?? 0;
        string method = args.GetString(1, "method", "common") ?? "common";
        double x = JinjaValues.IsNumber(value) ? JinjaValues.ToDouble(value) : throw TypeError("round", value);
        double scale = Math.Pow(10, precision);
        return method switch
        {
            "common" => precision is >= 0 and <= 15 ? Math.Round(x, (int)precision, MidpointRounding.ToEven) : Math.Round(x * scale) / scale, // Python's round: half to even
            "ceil" => Math.Ceiling(x * scale) / scale,
            "floor" => Math.Floor(x * scale) / scale,
            _ => throw JinjaException.Runtime("round(): method must be 'common', 'ceil' or 'floor'"),
        };
    }

    private static string ToJson(object? value, JinjaArgs args)
    {
        bool ensureAscii = args.GetBool(0, "ensure_ascii", false);
        string? indent = args.Get(1, "indent") switch
        {
            null => null,
            long n => new string(' ', (int)Math.Max(0, n)),
            string s => s,
            object other => throw JinjaException.Runtime($"tojson(): indent must be an integer or a string, not {JinjaValues.TypeName(other)}"),
        };
        (string item, string key) separators = args.Get(2, "separators") switch
        {
            null => (indent is null ? ", " : ",", ": "),
            List<object?> { Count: 2 } pair => (Str(pair[0]), Str(pair[1])),
            object other => throw JinjaException.Runtime($"tojson(): separators must be a pair of strings, not {JinjaValues.TypeName(other)}"),
        };
        bool sortKeys = args.GetBool(3, "sort_keys", false);
        return JinjaJson.Dumps(value, ensureAscii, indent, separators.item, separators.key, sortKeys);
    }

    /// <summary>Jinja 3.1 do_indent: lines after the first get the indent (blank lines only with blank=true).</summary>
    private static string Indent(object? value, JinjaArgs args)
    {
        string indent = args.Get(0, "width", 4L) is string s ? s : new string(' ', (int)(args.GetLong(0, "width", 4) ?? 4));
        bool first = args.GetBool(1, "first", false), blank = args.GetBool(2, "blank", false);
        List<string> lines = JinjaMembers.SplitLines(Str(value) + "\n");
        string result;
        if (blank)
        {
            result = string.Join("\n" + indent, lines);
        }
        else
        {
            var sb = new StringBuilder(lines.Count > 0 ? lines[0] : "");
            if (lines.Count > 1)
                sb.Append('\n').AppendJoin('\n', lines.Skip(1).Select(line => line.Length > 0 ? indent + line : line));
            result = sb.ToString();
        }
        return first ? indent + result : result;
    }

    /// <summary>map(attribute='a', default=x) or map('filter', args...).</summary>
    private static List<object?> Map(object? value, JinjaArgs args)
    {
        List<object?> items = JinjaValues.Iterate(value);
        if (args.Positional.Count == 0)
        {
            string attribute = args.GetString(-1, "attribute") ?? throw JinjaException.Runtime("map() needs a filter name or attribute=");
            object? fallback = args.Get(-1, "default", null);
            bool hasDefault = fallback is not null;
            args.Done();
            return items.Select(item =>
            {
                object? v = JinjaMembers.GetPath(item, attribute);
                return v is JinjaUndefined && hasDefault ? fallback : v;
            }).ToList();
        }
        string filter = args.Positional[0] as string ?? throw JinjaException.Runtime("map(): the first argument must be a filter name");
        if (!IsKnown(filter))
            throw JinjaException.Unsupported($"the filter '{filter}' (through map)");
        List<object?> filterArgs = args.Positional.Skip(1).ToList();
        return items.Select(item => Apply(filter, item, new JinjaArgs(filter, filterArgs, new Dictionary<string, object?>()))).ToList();
    }

    /// <summary>select/reject(test, args...) and selectattr/rejectattr(attribute, test, args...); no test = truthiness.</summary>
    private static List<object?> SelectOrReject(object? value, JinjaArgs args, bool keep, bool byAttribute)
    {
        IReadOnlyList<object?> positional = args.Positional;
        int offset = byAttribute ? 1 : 0;
        string? attribute = byAttribute ? (positional.Count > 0 ? positional[0] as string : null)
            ?? throw JinjaException.Runtime("selectattr()/rejectattr() need an attribute name") : null;
        string? test = positional.Count > offset ? positional[offset] as string ?? throw JinjaException.Runtime("the test name must be a string") : null;
        if (test is not null && !JinjaTests.IsKnown(test))
            throw JinjaException.Unsupported($"the test '{test}' (through select or reject)");
        List<object?> testArgs = positional.Skip(offset + 1).ToList();
        return JinjaValues.Iterate(value).Where(item =>
        {
            object? subject = attribute is null ? item : JinjaMembers.GetPath(item, attribute);
            bool passed = test is null ? JinjaValues.IsTruthy(subject) : JinjaTests.Apply(test, subject, testArgs);
            return passed == keep;
        }).ToList();
    }

    private static List<object?> Sort(object? value, JinjaArgs args)
    {
        bool reverse = args.GetBool(0, "reverse", false), caseSensitive = args.GetBool(1, "case_sensitive", false);
        string? attribute = args.GetString(2, "attribute");
        object? Key(object? item)
        {
            object? key = attribute is null ? item : JinjaMembers.GetPath(item, attribute);
            return !caseSensitive && key is string s ? s.ToLowerInvariant() : key;
        }
        List<object?> items = [.. JinjaValues.Iterate(value)];
        var sorted = items.Select((item, index) => (item, index)).ToList();
        sorted.Sort((x, y) =>
        {
            int c = JinjaValues.Compare(Key(x.item), Key(y.item), "<");
            return c != 0 ? (reverse ? -c : c) : x.index.CompareTo(y.index); // stable, as Python's sort
        });
        return sorted.Select(p => p.item).ToList();
    }

    private static List<object?> DictSort(object? value, JinjaArgs args)
    {
        if (value is not JinjaDict dict)
            throw TypeError("dictsort", value);
        bool caseSensitive = args.GetBool(0, "case_sensitive", false);
        bool byValue = (args.GetString(1, "by", "key") ?? "key") == "value";
        bool reverse = args.GetBool(2, "reverse", false);
        var pairs = dict.Select(p => (object?)new JinjaTuple([p.Key, p.Value])).ToList();
        var sorter = new JinjaArgs("dictsort", [], new Dictionary<string, object?> { ["reverse"] = reverse, ["case_sensitive"] = caseSensitive, ["attribute"] = byValue ? "1" : "0" });
        return Sort(pairs, sorter);
    }

    private static List<object?> Unique(object? value, JinjaArgs args)
    {
        bool caseSensitive = args.GetBool(0, "case_sensitive", false);
        string? attribute = args.GetString(1, "attribute");
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (object? item in JinjaValues.Iterate(value))
        {
            object? key = attribute is null ? item : JinjaMembers.GetPath(item, attribute);
            if (!caseSensitive && key is string s)
                key = s.ToLowerInvariant();
            if (seen.Any(k => JinjaValues.PyEquals(k, key)))
                continue;
            seen.Add(key);
            result.Add(item);
        }
        return result;
    }

    private static object? Sum(object? value, JinjaArgs args)
    {
        string? attribute = args.GetString(0, "attribute");
        object? total = args.Get(1, "start", 0L);
        foreach (object? item in JinjaValues.Iterate(value))
            total = JinjaOperators.Binary("+", total, attribute is null ? item : JinjaMembers.GetPath(item, attribute));
        return total;
    }

    private static object? MinMax(object? value, JinjaArgs args, bool max)
    {
        bool caseSensitive = args.GetBool(0, "case_sensitive", false);
        string? attribute = args.GetString(1, "attribute");
        List<object?> sorted = Sort(value, new JinjaArgs("min", [], new Dictionary<string, object?> { ["case_sensitive"] = caseSensitive, ["attribute"] = attribute }));
        return sorted.Count == 0 ? new JinjaUndefined($"No aggregated item, sequence was empty.") : max ? sorted[^1] : sorted[0];
    }
}
