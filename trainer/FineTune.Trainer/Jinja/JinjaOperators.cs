namespace FineTune.Trainer.Jinja;

/// <summary>
/// Python's arithmetic on template values: + (numbers, str + str, list + list), - * / // % ** on numbers (str * int
/// and list * int repeat), with int results for int operands except true division, floor semantics for // and % as
/// Python has them, and the TypeError messages Python gives. Undefined operands fail with their hint, as Jinja2's
/// Undefined does. String formatting with % is refused.
/// </summary>
internal static class JinjaOperators
{
    public static object? Binary(string op, object? a, object? b)
    {
        if (a is JinjaUndefined ua)
            throw JinjaException.Runtime(ua.Hint);
        if (b is JinjaUndefined ub)
            throw JinjaException.Runtime(ub.Hint);
        if (JinjaValues.IsNumber(a) && JinjaValues.IsNumber(b))
            return Numeric(op, a, b);
        switch (op)
        {
            case "+" when a is string s && b is string t:
                return s + t;
            case "+" when a is List<object?> x && b is List<object?> y:
                return x.Concat(y).ToList();
            case "+" when a is string:
                throw JinjaException.Runtime($"can only concatenate str (not \"{JinjaValues.TypeName(b)}\") to str");
            case "*" when (a is string || a is List<object?>) && b is long or bool:
                return Repeat(a!, JinjaValues.ToDouble(b));
            case "*" when a is long or bool && (b is string || b is List<object?>):
                return Repeat(b!, JinjaValues.ToDouble(a));
            case "%" when a is string:
                throw JinjaException.Unsupported("string formatting with '%'");
        }
        throw JinjaException.Runtime($"unsupported operand type(s) for {op}: '{JinjaValues.TypeName(a)}' and '{JinjaValues.TypeName(b)}'");
    }

    private static object Repeat(object sequence, double times)
    {
        int n = Math.Max(0, (int)times);
        return sequence is string s ? string.Concat(Enumerable.Repeat(s, n)) : Enumerable.Repeat((List<object?>)sequence, n).SelectMany(x => x).ToList();
    }

    private static object Numeric(string op, object? a, object? b)
    {
        bool integers = a is not double && b is not double;
        if (integers && op != "/")
        {
            long x = (long)JinjaValues.ToDouble(a), y = (long)JinjaValues.ToDouble(b);
            checked
            {
                switch (op)
                {
                    case "+": return x + y;
                    case "-": return x - y;
                    case "*": return x * y;
                    case "//": return y == 0 ? throw DivisionByZero() : FloorDiv(x, y);
                    case "%": return y == 0 ? throw DivisionByZero() : x - (y * FloorDiv(x, y));
                    case "**": return y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y);
                }
            }
        }
        double p = JinjaValues.ToDouble(a), q = JinjaValues.ToDouble(b);
        return op switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw DivisionByZero() : p / q,
            "//" => q == 0 ? throw DivisionByZero() : Math.Floor(p / q),
            "%" => q == 0 ? throw DivisionByZero() : p - (q * Math.Floor(p / q)),
            "**" => Math.Pow(p, q),
            _ => throw JinjaException.Runtime($"unknown operator {op}"),
        };
    }

    private static long FloorDiv(long x, long y)
    {
        long quotient = x / y;
        return (x % y != 0) && ((x < 0) != (y < 0)) ? quotient - 1 : quotient;
    }

    private static JinjaException DivisionByZero() => JinjaException.Runtime("division by zero");

    public static object? Unary(string op, object? value)
    {
        if (op == "not")
            return !JinjaValues.IsTruthy(value);
        return value switch
        {
            JinjaUndefined u => throw JinjaException.Runtime(u.Hint),
            long l => (object)(op == "-" ? -l : l),
            bool b => op == "-" ? -(b ? 1L : 0L) : (b ? 1L : 0L),
            double d => op == "-" ? -d : d,
            _ => throw JinjaException.Runtime($"bad operand type for unary {op}: '{JinjaValues.TypeName(value)}'"),
        };
    }
}
