namespace FineTune.Trainer.Jinja;

/// <summary>
/// The tests (<c>value is [not] name(args)</c>) of Jinja2 3.1 that chat templates use. A string is iterable and a
/// sequence, as in Python; bool counts as a number but not as an integer; undefined is iterable (it iterates as empty).
/// Names not listed are refused when the template is parsed.
/// reference: jinja2/tests.py.
/// </summary>
internal static class JinjaTests
{
    private static readonly HashSet<string> s_names =
    [
        "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float", "boolean",
        "true", "false", "callable", "odd", "even", "divisibleby", "equalto", "eq", "==", "ne", "!=", "lt", "<", "le", "<=",
        "gt", ">", "ge", ">=", "greaterthan", "lessthan", "in", "sameas", "lower", "upper", "escaped",
    ];

    public static bool IsKnown(string name) => s_names.Contains(name);

    public static bool Apply(string name, object? value, IReadOnlyList<object?> args)
    {
        object? Arg() => args.Count > 0 ? args[0] : throw JinjaException.Runtime($"the test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not JinjaUndefined,
            "undefined" => value is JinjaUndefined,
            "none" => value is null,
            "string" => value is string,
            "mapping" => value is JinjaDict,
            "iterable" => value is string or List<object?> or JinjaDict or JinjaUndefined,
            "sequence" => value is string or List<object?> or JinjaDict or JinjaUndefined,
            "number" => value is long or double or bool,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "callable" => value is JinjaCallable,
            "odd" => Integer(value, name) % 2 != 0,
            "even" => Integer(value, name) % 2 == 0,
            "divisibleby" => Integer(value, name) % Integer(Arg(), name) == 0,
            "equalto" or "eq" or "==" => JinjaValues.PyEquals(value, Arg()),
            "ne" or "!=" => !JinjaValues.PyEquals(value, Arg()),
            "lt" or "<" or "lessthan" => JinjaValues.Compare(value, Arg(), "<") < 0,
            "le" or "<=" => JinjaValues.Compare(value, Arg(), "<=") <= 0,
            "gt" or ">" or "greaterthan" => JinjaValues.Compare(value, Arg(), ">") > 0,
            "ge" or ">=" => JinjaValues.Compare(value, Arg(), ">=") >= 0,
            "in" => JinjaValues.Contains(Arg(), value),
            "sameas" => ReferenceEquals(value, Arg()) || (value is null && Arg() is null) || (value is bool a && Arg() is bool b && a == b),
            "lower" => value is string s && s == s.ToLowerInvariant(),
            "upper" => value is string u && u == u.ToUpperInvariant(),
            "escaped" => false,
            _ => throw JinjaException.Unsupported($"the test '{name}'"),
        };
    }

    private static long Integer(object? value, string test) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw JinjaException.Runtime($"the test '{test}' needs an integer, not {JinjaValues.TypeName(value)}"),
    };
}
