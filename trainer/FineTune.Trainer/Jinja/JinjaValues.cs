using System.Collections;
using System.Globalization;
using System.Text.Json;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// Python's semantics over the template's values: truth, str() and repr(), ==, ordering, iteration, len(), type
/// names for error messages, and the conversion of caller data (JSON, CLR lists and dictionaries) into them.
/// </summary>
internal static class JinjaValues
{
    public static bool IsNumber(object? v) => v is long or double or bool;

    public static bool IsTruthy(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        JinjaDict dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>Python's str(): what {{ value }} writes (undefined writes "").</summary>
    public static string ToStr(object? v) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v) => v switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PythonText.FloatRepr(d),
        string s => PythonText.Repr(s),
        JinjaUndefined => "Undefined",
        JinjaTuple tuple => "(" + string.Join(", ", tuple.Select(Repr)) + (tuple.Count == 1 ? ",)" : ")"),
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        JinjaDict dict => "{" + string.Join(", ", dict.Select(p => $"{Repr(p.Key)}: {Repr(p.Value)}")) + "}",
        JinjaNamespace ns => "<Namespace " + Repr(ToDict(ns.Attributes)) + ">",
        JinjaCallable f => $"<function {f.Name}>",
        _ => "<LoopContext>",
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        JinjaTuple => "tuple",
        List<object?> => "list",
        JinjaDict => "dict",
        JinjaUndefined => "Undefined",
        JinjaNamespace => "Namespace",
        JinjaCallable => "function",
        _ => "LoopContext",
    };

    public static double ToDouble(object? v) => v switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => d,
        _ => throw new InvalidCastException(TypeName(v)),
    };

    /// <summary>Python ==: numbers by value across int/float/bool, containers element by element.</summary>
    public static bool PyEquals(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        switch (a)
        {
            case null: return b is null;
            case string s: return b is string t && string.Equals(s, t, StringComparison.Ordinal);
            case JinjaUndefined: return b is JinjaUndefined;
            case List<object?> x when b is List<object?> y:
                return x.Count == y.Count && x.Zip(y).All(p => PyEquals(p.First, p.Second));
            case JinjaDict x when b is JinjaDict y:
                return x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out object? other) && PyEquals(p.Value, other));
            default: return ReferenceEquals(a, b);
        }
    }

    private static long ToLong(object? v) => v is bool b ? (b ? 1 : 0) : (long)v!;

    /// <summary>Python's ordering for &lt; &lt;= &gt; &gt;= and sort: numbers, strings (by code unit), lists lexicographically.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a).CompareTo(ToDouble(b)) : ToLong(a).CompareTo(ToLong(b));
        if (a is string s && b is string t)
            return Math.Sign(string.CompareOrdinal(s, t));
        if (a is List<object?> x && b is List<object?> y)
        {
            for (int i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                if (!PyEquals(x[i], y[i]))
                    return Compare(x[i], y[i], op);
            }
            return x.Count.CompareTo(y.Count);
        }
        if (a is JinjaUndefined u || b is JinjaUndefined)
            throw JinjaException.Runtime(((a as JinjaUndefined) ?? (JinjaUndefined)b!).Hint);
        throw JinjaException.Runtime($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    /// <summary>What a for loop or a filter iterates: a str's characters, a list's items, a dict's keys; undefined is empty.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        JinjaUndefined => [],
        string s => PythonText.CodePoints(s).Cast<object?>().ToList(),
        List<object?> list => list,
        JinjaDict dict => dict.Keys.Cast<object?>().ToList(),
        _ => throw JinjaException.Runtime($"'{TypeName(v)}' object is not iterable"),
    };

    public static long Length(object? v) => v switch
    {
        JinjaUndefined => 0,
        string s => PythonText.Length(s),
        List<object?> list => list.Count,
        JinjaDict dict => dict.Count,
        _ => throw JinjaException.Runtime($"object of type '{TypeName(v)}' has no len()"),
    };

    /// <summary>Python's "in": a substring, an item of a list, a key of a dict.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string t ? s.Contains(t, StringComparison.Ordinal)
            : throw JinjaException.Runtime($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        List<object?> list => list.Any(x => PyEquals(x, item)),
        JinjaDict dict => item is not null && dict.ContainsKey(item),
        JinjaUndefined => false,
        _ => throw JinjaException.Runtime($"argument of type '{TypeName(container)}' is not iterable"),
    };

    public static JinjaDict ToDict(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var dict = new JinjaDict();
        foreach (var (key, value) in pairs)
            dict[key] = value;
        return dict;
    }

    /// <summary>Caller data as template values: JSON elements, strings, numbers, bools, lists and string-keyed dictionaries.</summary>
    public static object? FromClr(object? value) => value switch
    {
        null or string or bool or long or double or JinjaUndefined or JinjaNamespace or JinjaCallable => value,
        int i => (long)i,
        float f => (double)f,
        JsonElement e => FromJson(e),
        JinjaDict d => d,
        IEnumerable<KeyValuePair<string, object?>> pairs => ToDict(pairs.Select(p => KeyValuePair.Create(p.Key, FromClr(p.Value)))),
        IEnumerable items => items.Cast<object?>().Select(FromClr).ToList(),
        _ => throw new ArgumentException($"a template value cannot be a {value.GetType().Name}", nameof(value)),
    };

    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Number => e.TryGetInt64(out long l) && !e.GetRawText().Contains('.') && !e.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase)
            ? (object)l : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        _ => ToDict(e.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, FromJson(p.Value)))),
    };
}
