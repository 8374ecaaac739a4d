namespace FineTune.Trainer.Jinja;

// The expression tree the parser builds and JinjaEvaluator walks. Every node carries the template line it starts on.

/// <summary>An expression node.</summary>
internal abstract record JinjaExpr(int Line);

/// <summary>A literal: string, integer (long), float (double), true/false, none.</summary>
internal sealed record ConstExpr(object? Value, int Line) : JinjaExpr(Line);

/// <summary>A variable reference.</summary>
internal sealed record NameExpr(string Name, int Line) : JinjaExpr(Line);

/// <summary>a.b: an attribute first, then the item "b" (Jinja's environment.getattr).</summary>
internal sealed record AttributeExpr(JinjaExpr Target, string Name, int Line) : JinjaExpr(Line);

/// <summary>a[b]: the item first, then an attribute when b is a string (Jinja's environment.getitem).</summary>
internal sealed record ItemExpr(JinjaExpr Target, JinjaExpr Index, int Line) : JinjaExpr(Line);

/// <summary>a[start:stop:step], any part optional.</summary>
internal sealed record SliceExpr(JinjaExpr Target, JinjaExpr? Start, JinjaExpr? Stop, JinjaExpr? Step, int Line) : JinjaExpr(Line);

/// <summary>Positional and keyword arguments of a call, filter or test.</summary>
internal sealed record JinjaArguments(IReadOnlyList<JinjaExpr> Positional, IReadOnlyList<(string Name, JinjaExpr Value)> Keywords)
{
    public static readonly JinjaArguments None = new([], []);
}

/// <summary>f(args).</summary>
internal sealed record CallExpr(JinjaExpr Function, JinjaArguments Arguments, int Line) : JinjaExpr(Line);

/// <summary>value | name(args).</summary>
internal sealed record FilterExpr(JinjaExpr Value, string Name, JinjaArguments Arguments, int Line) : JinjaExpr(Line);

/// <summary>value is [not] name(args).</summary>
internal sealed record TestExpr(JinjaExpr Value, string Name, JinjaArguments Arguments, bool Negated, int Line) : JinjaExpr(Line);

/// <summary>-x, +x, not x.</summary>
internal sealed record UnaryExpr(string Operator, JinjaExpr Operand, int Line) : JinjaExpr(Line);

/// <summary>Arithmetic (+ - * / // % **), ~ concatenation, and/or (short-circuit, returning an operand as Python does).</summary>
internal sealed record BinaryExpr(string Operator, JinjaExpr Left, JinjaExpr Right, int Line) : JinjaExpr(Line);

/// <summary>A chain a op1 b op2 c (== != &lt; &lt;= &gt; &gt;= in, "not in"), true when every link holds.</summary>
internal sealed record CompareExpr(JinjaExpr First, IReadOnlyList<(string Operator, JinjaExpr Operand)> Rest, int Line) : JinjaExpr(Line);

/// <summary>then if test else otherwise (otherwise null: undefined).</summary>
internal sealed record ConditionalExpr(JinjaExpr Test, JinjaExpr Then, JinjaExpr? Otherwise, int Line) : JinjaExpr(Line);

/// <summary>[a, b], or (a, b) with <see cref="IsTuple"/>.</summary>
internal sealed record ListExpr(IReadOnlyList<JinjaExpr> Items, int Line, bool IsTuple = false) : JinjaExpr(Line);

/// <summary>{k: v, ...}, keys kept in order.</summary>
internal sealed record DictExpr(IReadOnlyList<(JinjaExpr Key, JinjaExpr Value)> Items, int Line) : JinjaExpr(Line);
