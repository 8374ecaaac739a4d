namespace FineTune.Trainer.Jinja;

// The runtime objects a template sees besides Python's scalars (null = None, bool, long = int, double = float,
// string = str), lists (List<object?>; JinjaTuple for tuples) and JinjaDict (an insertion-ordered dict).

/// <summary>Jinja's Undefined: renders as "", is false, iterates as empty, and fails when used in arithmetic or
/// looked into; <see cref="Hint"/> is the message it fails with ("'x' is undefined").</summary>
internal sealed class JinjaUndefined(string hint)
{
    public string Hint { get; } = hint;
}

/// <summary>namespace(...): the one mutable object, whose attributes {% set ns.a = v %} assigns across scopes.</summary>
internal sealed class JinjaNamespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A callable value: a global (raise_exception, namespace, range), a bound method ("x".strip), or a macro.</summary>
internal sealed class JinjaCallable(string name, Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;

    public object? Invoke(IReadOnlyList<object?> positional, IReadOnlyDictionary<string, object?> keywords) => invoke(positional, keywords);
}

/// <summary>The <c>loop</c> variable of a for loop (index, index0, first, last, length, revindex, previtem, ...).</summary>
internal sealed class JinjaLoop(IReadOnlyList<object?> items, int depth)
{
    public int Index0 { get; set; }

    public object? Attribute(string name) => name switch
    {
        "index0" => (long)Index0,
        "index" => (long)Index0 + 1,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "depth" => (long)depth,
        "depth0" => (long)depth - 1,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new JinjaUndefined("there is no previous item"),
        "nextitem" => Index0 + 1 < items.Count ? items[Index0 + 1] : new JinjaUndefined("there is no next item"),
        "cycle" => new JinjaCallable("loop.cycle", (args, _) => args.Count == 0
            ? throw JinjaException.Runtime("loop.cycle() needs at least one item") : args[Index0 % args.Count]),
        "changed" => throw JinjaException.Unsupported("loop.changed()"),
        _ => new JinjaUndefined($"'LoopContext' object has no attribute '{name}'"),
    };
}

/// <summary>A Python tuple: a list that prints as (a, b) (items(), dictsort and "(a, b)" literals make them).</summary>
internal sealed class JinjaTuple : List<object?>
{
    public JinjaTuple(IEnumerable<object?> items)
        : base(items)
    {
    }
}

/// <summary>A Python dict: insertion-ordered, keys compared as Python compares them (1 == 1.0 == True).</summary>
internal sealed class JinjaDict : System.Collections.Generic.OrderedDictionary<object, object?>
{
    public JinjaDict()
        : base(JinjaKeyComparer.Instance)
    {
    }
}

/// <summary>Python key equality for <see cref="JinjaDict"/>: numbers by value, strings ordinally.</summary>
internal sealed class JinjaKeyComparer : IEqualityComparer<object>
{
    public static readonly JinjaKeyComparer Instance = new();

    public new bool Equals(object? x, object? y) => JinjaValues.PyEquals(x, y);

    public int GetHashCode(object value) => value switch
    {
        string s => StringComparer.Ordinal.GetHashCode(s),
        bool b => (b ? 1.0 : 0.0).GetHashCode(),
        long l => ((double)l).GetHashCode(),
        double d => d.GetHashCode(),
        _ => 0,
    };
}
