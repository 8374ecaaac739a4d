namespace FineTune.Trainer.Jinja;

/// <summary>
/// Evaluates an expression tree in a scope with Python's semantics (<see cref="JinjaValues"/>,
/// <see cref="JinjaOperators"/>, <see cref="JinjaMembers"/>): and/or short-circuit and return an operand, a
/// comparison chain a &lt; b &lt; c holds when every link does, "a ~ b" joins str() of both (undefined as ""), a
/// conditional without else gives undefined. A name that is not set is undefined, not an error.
/// </summary>
internal static class JinjaEvaluator
{
    public static object? Evaluate(JinjaExpr expr, JinjaScope scope) => expr switch
    {
        ConstExpr c => c.Value,
        NameExpr n => scope.Lookup(n.Name),
        AttributeExpr a => JinjaMembers.GetAttribute(Evaluate(a.Target, scope), a.Name),
        ItemExpr i => JinjaMembers.GetItem(Evaluate(i.Target, scope), Evaluate(i.Index, scope)),
        SliceExpr s => Slice(Evaluate(s.Target, scope), Index(s.Start, scope), Index(s.Stop, scope), Index(s.Step, scope)),
        CallExpr c => Call(Evaluate(c.Function, scope), c.Arguments, scope),
        FilterExpr f => JinjaFilters.Apply(f.Name, Evaluate(f.Value, scope), Arguments(f.Name, f.Arguments, scope)),
        TestExpr t => JinjaTests.Apply(t.Name, Evaluate(t.Value, scope), t.Arguments.Positional.Select(a => Evaluate(a, scope)).ToList()) != t.Negated,
        UnaryExpr u => JinjaOperators.Unary(u.Operator, Evaluate(u.Operand, scope)),
        BinaryExpr b => Binary(b, scope),
        CompareExpr c => Compare(c, scope),
        ConditionalExpr c => JinjaValues.IsTruthy(Evaluate(c.Test, scope)) ? Evaluate(c.Then, scope)
            : c.Otherwise is null ? new JinjaUndefined("the conditional expression has no else branch") : Evaluate(c.Otherwise, scope),
        ListExpr { IsTuple: true } t => new JinjaTuple(t.Items.Select(item => Evaluate(item, scope))),
        ListExpr l => l.Items.Select(item => Evaluate(item, scope)).ToList(),
        DictExpr d => Dict(d, scope),
        _ => throw new InvalidOperationException($"unknown expression node {expr.GetType().Name}"),
    };

    private static object? Binary(BinaryExpr b, JinjaScope scope)
    {
        object? left = Evaluate(b.Left, scope);
        switch (b.Operator)
        {
            case "and": return JinjaValues.IsTruthy(left) ? Evaluate(b.Right, scope) : left;
            case "or": return JinjaValues.IsTruthy(left) ? left : Evaluate(b.Right, scope);
            case "~": return JinjaValues.ToStr(left) + JinjaValues.ToStr(Evaluate(b.Right, scope));
            default: return JinjaOperators.Binary(b.Operator, left, Evaluate(b.Right, scope));
        }
    }

    private static bool Compare(CompareExpr c, JinjaScope scope)
    {
        object? left = Evaluate(c.First, scope);
        foreach (var (op, operand) in c.Rest)
        {
            object? right = Evaluate(operand, scope);
            bool holds = op switch
            {
                "==" => JinjaValues.PyEquals(left, right),
                "!=" => !JinjaValues.PyEquals(left, right),
                "<" => JinjaValues.Compare(left, right, op) < 0,
                "<=" => JinjaValues.Compare(left, right, op) <= 0,
                ">" => JinjaValues.Compare(left, right, op) > 0,
                ">=" => JinjaValues.Compare(left, right, op) >= 0,
                "in" => JinjaValues.Contains(right, left),
                _ => !JinjaValues.Contains(right, left), // "not in"
            };
            if (!holds)
                return false;
            left = right;
        }
        return true;
    }

    private static long? Index(JinjaExpr? expr, JinjaScope scope) => expr is null ? null : Evaluate(expr, scope) switch
    {
        null => null,
        long l => l,
        bool b => b ? 1 : 0,
        JinjaUndefined u => throw JinjaException.Runtime(u.Hint),
        object other => throw JinjaException.Runtime($"slice indices must be integers or None, not {JinjaValues.TypeName(other)}"),
    };

    private static object? Slice(object? target, long? start, long? stop, long? step) => target switch
    {
        string s => PythonText.Slice(s, start, stop, step),
        List<object?> list => PythonSlice.Indices(list.Count, start, stop, step).Select(i => list[i]).ToList(),
        JinjaUndefined u => throw JinjaException.Runtime(u.Hint),
        _ => throw JinjaException.Runtime($"'{JinjaValues.TypeName(target)}' object is not subscriptable"),
    };

    private static object? Call(object? function, JinjaArguments arguments, JinjaScope scope)
    {
        if (function is JinjaUndefined u)
            throw JinjaException.Runtime(u.Hint);
        if (function is not JinjaCallable callable)
            throw JinjaException.Runtime($"'{JinjaValues.TypeName(function)}' object is not callable");
        var positional = arguments.Positional.Select(a => Evaluate(a, scope)).ToList();
        var keywords = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in arguments.Keywords)
            keywords[name] = Evaluate(value, scope);
        return callable.Invoke(positional, keywords);
    }

    private static JinjaArgs Arguments(string function, JinjaArguments arguments, JinjaScope scope)
    {
        var keywords = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in arguments.Keywords)
            keywords[name] = Evaluate(value, scope);
        return new JinjaArgs(function, arguments.Positional.Select(a => Evaluate(a, scope)).ToList(), keywords);
    }

    private static JinjaDict Dict(DictExpr d, JinjaScope scope)
    {
        var dict = new JinjaDict();
        foreach (var (keyExpr, valueExpr) in d.Items)
        {
            object? key = Evaluate(keyExpr, scope);
            if (key is null or JinjaUndefined or List<object?> or JinjaDict)
                throw JinjaException.Runtime($"a dict key cannot be {JinjaValues.TypeName(key)}");
            dict[key] = Evaluate(valueExpr, scope);
        }
        return dict;
    }
}
