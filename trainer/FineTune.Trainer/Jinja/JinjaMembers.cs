using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// a.b and a[b] as Jinja resolves them, and the Python methods templates call on values. a.b is an attribute first
/// (a dict's items/keys/values/get, a str's strip/split/startswith...), then the item "b"; a[b] is the item first, then
/// the attribute. A miss is undefined, never an error, until the undefined value is used. Methods that would mutate a
/// value are refused as transformers' ImmutableSandboxedEnvironment refuses them; real Python methods this
/// interpreter lacks are refused by name when called.
/// reference: jinja2/environment.py Environment.getattr/getitem; jinja2/sandbox.py ImmutableSandboxedEnvironment.
/// </summary>
internal static class JinjaMembers
{
    private static readonly HashSet<string> s_pythonStrMethods =
    [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map", "index",
        "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace",
        "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix", "replace",
        "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
        "title", "translate", "upper", "zfill",
    ];

    private static readonly HashSet<string> s_mutators = ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem"];

    public static object? GetAttribute(object? target, string name) => target switch
    {
        JinjaUndefined u => throw JinjaException.Runtime(u.Hint),
        JinjaDict dict => DictMethod(dict, name) ?? (dict.TryGetValue(name, out object? value) ? value : Missing(target, name)),
        string s => (object?)StrMethod(s, name) ?? Missing(target, name),
        List<object?> list => (object?)ListMethod(list, name) ?? Missing(target, name),
        JinjaNamespace ns => ns.Attributes.TryGetValue(name, out object? attribute) ? attribute : Missing(target, name),
        JinjaLoop loop => loop.Attribute(name),
        _ => Missing(target, name),
    };

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case JinjaUndefined u:
                throw JinjaException.Runtime(u.Hint);
            case JinjaDict dict when key is not null && dict.TryGetValue(key, out object? value):
                return value;
            case List<object?> list when key is long or bool:
                return PythonSlice.Index(key is bool b ? (b ? 1 : 0) : (long)key, list.Count) is int i ? list[i]
                    : new JinjaUndefined($"list object has no element {JinjaValues.Repr(key)}");
            case string s when key is long index:
                List<string> points = PythonText.CodePoints(s);
                return PythonSlice.Index(index, points.Count) is int at ? points[at] : new JinjaUndefined($"str object has no element {index}");
        }
        return key is string name ? GetAttribute(target, name) : Missing(target, JinjaValues.Repr(key));
    }

    /// <summary>A dotted path "a.b.0" as selectattr, map and sort read it: each part an item, digits an index.</summary>
    public static object? GetPath(object? target, string path)
    {
        foreach (string part in path.Split('.'))
            target = GetItem(target, part.Length > 0 && part.All(char.IsAsciiDigit) ? long.Parse(part) : part);
        return target;
    }

    private static JinjaUndefined Missing(object? target, string name) => new(target is null
        ? $"'None' has no attribute '{name}'"
        : $"'{JinjaValues.TypeName(target)} object' has no attribute '{name}'");

    private static JinjaCallable Method(string name, Func<JinjaArgs, object?> body) =>
        new(name, (positional, keywords) =>
        {
            var args = new JinjaArgs(name, positional, keywords);
            object? result = body(args);
            args.Done();
            return result;
        });

    private static JinjaCallable? DictMethod(JinjaDict dict, string name) => name switch
    {
        "items" => Method("dict.items", _ => dict.Select(p => (object?)new JinjaTuple([p.Key, p.Value])).ToList()),
        "keys" => Method("dict.keys", _ => dict.Keys.Cast<object?>().ToList()),
        "values" => Method("dict.values", _ => dict.Values.ToList()),
        "get" => Method("dict.get", a => a.Get(0, "key") is object key && dict.TryGetValue(key, out object? v) ? v : a.Get(1, "default")),
        _ when s_mutators.Contains(name) => Refused("dict", name),
        "copy" or "fromkeys" => Unsupported("dict", name),
        _ => null,
    };

    private static JinjaCallable? ListMethod(List<object?> list, string name) => name switch
    {
        "count" => Method("list.count", a => (long)list.Count(x => JinjaValues.PyEquals(x, a.Get(0, "value")))),
        "index" => Method("list.index", a =>
        {
            int i = list.FindIndex(x => JinjaValues.PyEquals(x, a.Get(0, "value")));
            return i >= 0 ? (long)i : throw JinjaException.Runtime($"{JinjaValues.Repr(a.Get(0, "value"))} is not in list");
        }),
        _ when s_mutators.Contains(name) => Refused("list", name),
        "copy" => Unsupported("list", name),
        _ => null,
    };

    private static JinjaCallable Refused(string type, string name) =>
        new(name, (_, _) => throw JinjaException.Runtime($"access to attribute '{name}' of '{type}' object is unsafe (chat templates render in an immutable sandbox)"));

    private static JinjaCallable Unsupported(string type, string name) =>
        new(name, (_, _) => throw JinjaException.Unsupported($"the {type} method '{name}'"));

    private static JinjaCallable? StrMethod(string s, string name) => name switch
    {
        "strip" => Method("str.strip", a => PythonText.Strip(s, a.GetString(0, "chars"))),
        "lstrip" => Method("str.lstrip", a => PythonText.LStrip(s, a.GetString(0, "chars"))),
        "rstrip" => Method("str.rstrip", a => PythonText.RStrip(s, a.GetString(0, "chars"))),
        "upper" => Method("str.upper", _ => s.ToUpperInvariant()),
        "lower" => Method("str.lower", _ => s.ToLowerInvariant()),
        "title" => Method("str.title", _ => PythonText.Title(s)),
        "capitalize" => Method("str.capitalize", _ => PythonText.Capitalize(s)),
        "startswith" => Method("str.startswith", a => Affixes(a.Get(0, "prefix"), "startswith").Any(p => s.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => Method("str.endswith", a => Affixes(a.Get(0, "suffix"), "endswith").Any(p => s.EndsWith(p, StringComparison.Ordinal))),
        "replace" => Method("str.replace", a => PythonReplace(s, Text(a.Get(0, "old"), "replace"), Text(a.Get(1, "new"), "replace"), a.GetLong(2, "count") ?? -1)),
        "split" => Method("str.split", a => Split(s, a.GetString(0, "sep"), a.GetLong(1, "maxsplit") ?? -1).Cast<object?>().ToList()),
        "splitlines" => Method("str.splitlines", _ => SplitLines(s).Cast<object?>().ToList()),
        "join" => Method("str.join", a => string.Join(s, JinjaValues.Iterate(a.Get(0, "iterable")).Select(x => Text(x, "join")))),
        "count" => Method("str.count", a => (long)Count(s, Text(a.Get(0, "sub"), "count"))),
        "find" => Method("str.find", a => (long)CodePointIndex(s, s.IndexOf(Text(a.Get(0, "sub"), "find"), StringComparison.Ordinal))),
        "isdigit" => Method("str.isdigit", _ => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => Method("str.isalpha", _ => s.Length > 0 && s.All(char.IsLetter)),
        "isspace" => Method("str.isspace", _ => s.Length > 0 && s.All(PythonText.IsSpace)),
        "islower" => Method("str.islower", _ => s.Any(char.IsLetter) && s == s.ToLowerInvariant()),
        "isupper" => Method("str.isupper", _ => s.Any(char.IsLetter) && s == s.ToUpperInvariant()),
        "removeprefix" => Method("str.removeprefix", a => Text(a.Get(0, "prefix"), "removeprefix") is string p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s),
        "removesuffix" => Method("str.removesuffix", a => Text(a.Get(0, "suffix"), "removesuffix") is string p && p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s),
        _ when s_pythonStrMethods.Contains(name) => Unsupported("str", name),
        _ => null,
    };

    private static string Text(object? value, string method) =>
        value as string ?? throw JinjaException.Runtime($"str.{method}() needs a string argument, not {JinjaValues.TypeName(value)}");

    private static IEnumerable<string> Affixes(object? value, string method) => value switch
    {
        string s => [s],
        List<object?> list => list.Select(x => Text(x, method)),
        _ => throw JinjaException.Runtime($"str.{method}() needs a string or a tuple of strings, not {JinjaValues.TypeName(value)}"),
    };

    private static int CodePointIndex(string s, int charIndex) => charIndex < 0 ? -1 : PythonText.Length(s[..charIndex]);

    private static int Count(string s, string sub)
    {
        if (sub.Length == 0)
            return PythonText.Length(s) + 1;
        int count = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
            count++;
        return count;
    }

    /// <summary>Python's str.replace, including an empty <paramref name="old"/> (inserted between characters) and a count.</summary>
    public static string PythonReplace(string s, string old, string replacement, long count)
    {
        if (count < 0)
            count = long.MaxValue;
        var sb = new StringBuilder();
        if (old.Length == 0)
        {
            List<string> points = PythonText.CodePoints(s);
            for (int i = 0; i <= points.Count; i++)
            {
                if (i < count)
                    sb.Append(replacement);
                if (i < points.Count)
                    sb.Append(points[i]);
            }
            return sb.ToString();
        }
        int pos = 0;
        for (long done = 0; done < count; done++)
        {
            int found = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (found < 0)
                break;
            sb.Append(s, pos, found - pos).Append(replacement);
            pos = found + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    /// <summary>Python's str.split: runs of whitespace without a separator (no empty pieces), exact pieces with one.</summary>
    public static List<string> Split(string s, string? separator, long maxSplit)
    {
        var pieces = new List<string>();
        if (maxSplit < 0)
            maxSplit = long.MaxValue;
        if (separator is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && PythonText.IsSpace(s[i]))
                    i++;
                if (i >= s.Length)
                    break;
                if (pieces.Count == maxSplit)
                {
                    pieces.Add(PythonText.RStrip(s[i..]));
                    break;
                }
                int start = i;
                while (i < s.Length && !PythonText.IsSpace(s[i]))
                    i++;
                pieces.Add(s[start..i]);
            }
            return pieces;
        }
        if (separator.Length == 0)
            throw JinjaException.Runtime("str.split(): empty separator");
        int pos = 0;
        while (pieces.Count < maxSplit)
        {
            int found = s.IndexOf(separator, pos, StringComparison.Ordinal);
            if (found < 0)
                break;
            pieces.Add(s[pos..found]);
            pos = found + separator.Length;
        }
        pieces.Add(s[pos..]);
        return pieces;
    }

    /// <summary>Python's str.splitlines(): breaks at \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029; no final empty line.</summary>
    public static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029'))
                continue;
            lines.Add(s[start..i]);
            if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                i++;
            start = i + 1;
        }
        if (start < s.Length)
            lines.Add(s[start..]);
        return lines;
    }
}
