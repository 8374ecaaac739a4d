using System.Globalization;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// Parses expressions with Jinja2's grammar and precedence (lowest first): "a if c else b", or, and, not,
/// comparisons and "in" (chained), + -, ~, * / // %, **, unary - +, then postfix .attr [index] [a:b:c] (call), then
/// | filter and "is" test, which bind tighter than any operator: <c>x | trim + 'a'</c> is <c>(x | trim) + 'a'</c>.
/// A filter or test name this interpreter does not implement is refused here, before anything renders.
/// reference: jinja2/parser.py (parse_tuple, parse_condexpr .. parse_unary, parse_primary, parse_postfix, parse_filter_expr).
/// </summary>
internal sealed class JinjaExpressionParser(JinjaTokenStream tokens)
{
    private static readonly HashSet<string> s_comparisons = ["==", "!=", "<", ">", "<=", ">="];
    private readonly JinjaTokenStream _tokens = tokens;

    private JinjaToken Current => _tokens.Current;

    private JinjaToken Peek(int ahead = 1) => _tokens.Peek(ahead);

    private JinjaToken Next() => _tokens.Next();

    private string ExpectName() => _tokens.ExpectName();

    private void ExpectOperator(string symbol) => _tokens.ExpectOperator(symbol);

    private void Expect(JinjaTokenKind kind) => _tokens.Expect(kind);


    /// <summary>An expression, or a tuple "a, b" (a list value) when commas follow.</summary>
    public JinjaExpr ParseTuple(bool withCondition)
    {
        int line = Current.Line;
        JinjaExpr first = withCondition ? ParseExpression() : ParseOr();
        if (!Current.IsOperator(","))
            return first;
        var items = new List<JinjaExpr> { first };
        while (Current.IsOperator(","))
        {
            Next();
            if (Current.Kind is JinjaTokenKind.VariableEnd or JinjaTokenKind.BlockEnd || Current.IsOperator(")"))
                break;
            items.Add(withCondition ? ParseExpression() : ParseOr());
        }
        return new ListExpr(items, line, IsTuple: true);
    }

    public JinjaExpr ParseExpression()
    {
        JinjaExpr value = ParseOr();
        while (Current.IsName("if"))
        {
            int line = Next().Line;
            JinjaExpr test = ParseOr();
            JinjaExpr? otherwise = null;
            if (Current.IsName("else"))
            {
                Next();
                otherwise = ParseExpression();
            }
            value = new ConditionalExpr(test, value, otherwise, line);
        }
        return value;
    }

    private JinjaExpr ParseOr()
    {
        JinjaExpr left = ParseAnd();
        while (Current.IsName("or"))
        {
            int line = Next().Line;
            left = new BinaryExpr("or", left, ParseAnd(), line);
        }
        return left;
    }

    private JinjaExpr ParseAnd()
    {
        JinjaExpr left = ParseNot();
        while (Current.IsName("and"))
        {
            int line = Next().Line;
            left = new BinaryExpr("and", left, ParseNot(), line);
        }
        return left;
    }

    private JinjaExpr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int line = Next().Line;
            return new UnaryExpr("not", ParseNot(), line);
        }
        return ParseCompare();
    }

    private JinjaExpr ParseCompare()
    {
        int line = Current.Line;
        JinjaExpr first = ParseAdditive();
        var rest = new List<(string, JinjaExpr)>();
        while (true)
        {
            if (Current.Kind == JinjaTokenKind.Operator && s_comparisons.Contains(Current.Value))
                rest.Add((Next().Value, ParseAdditive()));
            else if (Current.IsName("in"))
                rest.Add((Next().Value, ParseAdditive()));
            else if (Current.IsName("not") && Peek().IsName("in"))
            {
                _tokens.Advance(2);
                rest.Add(("not in", ParseAdditive()));
            }
            else
                break;
        }
        return rest.Count == 0 ? first : new CompareExpr(first, rest, line);
    }

    private JinjaExpr ParseAdditive()
    {
        JinjaExpr left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            JinjaToken op = Next();
            left = new BinaryExpr(op.Value, left, ParseConcat(), op.Line);
        }
        return left;
    }

    private JinjaExpr ParseConcat()
    {
        JinjaExpr left = ParseMultiplicative();
        while (Current.IsOperator("~"))
        {
            JinjaToken op = Next();
            left = new BinaryExpr("~", left, ParseMultiplicative(), op.Line);
        }
        return left;
    }

    private JinjaExpr ParseMultiplicative()
    {
        JinjaExpr left = ParsePower();
        while (Current.Kind == JinjaTokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            JinjaToken op = Next();
            left = new BinaryExpr(op.Value, left, ParsePower(), op.Line);
        }
        return left;
    }

    private JinjaExpr ParsePower()
    {
        JinjaExpr left = ParseUnary(withFilter: true);
        while (Current.IsOperator("**"))
        {
            JinjaToken op = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), op.Line);
        }
        return left;
    }

    private JinjaExpr ParseUnary(bool withFilter)
    {
        JinjaExpr node;
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            JinjaToken op = Next();
            node = new UnaryExpr(op.Value, ParseUnary(withFilter: false), op.Line);
        }
        else
        {
            node = ParsePrimary();
        }
        node = ParsePostfix(node);
        return withFilter ? ParseFilters(node) : node;
    }

    private JinjaExpr ParsePrimary()
    {
        JinjaToken token = Next();
        switch (token.Kind)
        {
            case JinjaTokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new ConstExpr(true, token.Line),
                    "false" or "False" => new ConstExpr(false, token.Line),
                    "none" or "None" => new ConstExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case JinjaTokenKind.String:
                string text = token.Value;
                while (Current.Kind == JinjaTokenKind.String)
                    text += Next().Value; // adjacent literals join, as in Python
                return new ConstExpr(text, token.Line);
            case JinjaTokenKind.Integer:
                return new ConstExpr(long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long integer)
                    ? (object)integer : double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case JinjaTokenKind.Float:
                return new ConstExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case JinjaTokenKind.Operator when token.Value == "(":
                if (Current.IsOperator(")"))
                {
                    Next();
                    return new ListExpr([], token.Line, IsTuple: true);
                }
                JinjaExpr inner = ParseTuple(withCondition: true);
                ExpectOperator(")");
                return inner;
            case JinjaTokenKind.Operator when token.Value == "[":
                return new ListExpr(ParseSequence("]"), token.Line);
            case JinjaTokenKind.Operator when token.Value == "{":
                var items = new List<(JinjaExpr, JinjaExpr)>();
                while (!Current.IsOperator("}"))
                {
                    if (items.Count > 0)
                    {
                        ExpectOperator(",");
                        if (Current.IsOperator("}"))
                            break;
                    }
                    JinjaExpr key = ParseExpression();
                    ExpectOperator(":");
                    items.Add((key, ParseExpression()));
                }
                Next();
                return new DictExpr(items, token.Line);
            default:
                throw JinjaException.Syntax($"an expression was expected, not {token}", token.Line);
        }
    }

    /// <summary>Comma-separated expressions up to <paramref name="close"/> (consumed), a trailing comma allowed.</summary>
    private List<JinjaExpr> ParseSequence(string close)
    {
        var items = new List<JinjaExpr>();
        while (!Current.IsOperator(close))
        {
            if (items.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(close))
                    break;
            }
            items.Add(ParseExpression());
        }
        Next();
        return items;
    }

    private JinjaExpr ParsePostfix(JinjaExpr node)
    {
        while (true)
        {
            JinjaToken token = Current;
            if (token.IsOperator("."))
            {
                Next();
                JinjaToken name = Next();
                node = name.Kind switch
                {
                    JinjaTokenKind.Name => new AttributeExpr(node, name.Value, token.Line),
                    JinjaTokenKind.Integer => new ItemExpr(node, new ConstExpr(long.Parse(name.Value, CultureInfo.InvariantCulture), name.Line), token.Line),
                    _ => throw JinjaException.Syntax($"an attribute name was expected after '.', not {name}", name.Line),
                };
            }
            else if (token.IsOperator("["))
            {
                Next();
                node = ParseSubscript(node, token.Line);
            }
            else if (token.IsOperator("("))
            {
                Next();
                node = new CallExpr(node, ParseArguments(), token.Line);
            }
            else
            {
                return node;
            }
        }
    }

    private JinjaExpr ParseSubscript(JinjaExpr target, int line)
    {
        JinjaExpr? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!Current.IsOperator(":"))
            {
                if (Current.IsOperator(","))
                    throw JinjaException.Unsupported("a subscript with several indices ('a[i, j]')", Current.Line);
                ExpectOperator("]");
                return new ItemExpr(target, start, line);
            }
        }
        Next(); // ':'
        JinjaExpr? stop = Current.IsOperator(":") || Current.IsOperator("]") ? null : ParseExpression();
        JinjaExpr? step = null;
        if (Current.IsOperator(":"))
        {
            Next();
            if (!Current.IsOperator("]"))
                step = ParseExpression();
        }
        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step, line);
    }

    /// <summary>The arguments after '(' up to ')' (consumed): positional, then name=value keywords.</summary>
    private JinjaArguments ParseArguments()
    {
        var positional = new List<JinjaExpr>();
        var keywords = new List<(string, JinjaExpr)>();
        while (!Current.IsOperator(")"))
        {
            if (positional.Count + keywords.Count > 0)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")"))
                    break;
            }
            if (Current.IsOperator("*") || Current.IsOperator("**"))
                throw JinjaException.Unsupported("a call with *args or **kwargs", Current.Line);
            if (Current.Kind == JinjaTokenKind.Name && Peek().IsOperator("="))
            {
                string name = Next().Value;
                Next();
                keywords.Add((name, ParseExpression()));
            }
            else
            {
                if (keywords.Count > 0)
                    throw JinjaException.Syntax("a positional argument follows a keyword argument", Current.Line);
                positional.Add(ParseExpression());
            }
        }
        Next();
        return new JinjaArguments(positional, keywords);
    }

    private JinjaExpr ParseFilters(JinjaExpr node)
    {
        while (true)
        {
            JinjaToken token = Current;
            if (token.IsOperator("|"))
            {
                Next();
                string name = ParseDottedName();
                if (!JinjaFilters.IsKnown(name))
                    throw JinjaException.Unsupported($"the filter '{name}'", token.Line);
                JinjaArguments arguments = JinjaArguments.None;
                if (Current.IsOperator("("))
                {
                    Next();
                    arguments = ParseArguments();
                }
                node = new FilterExpr(node, name, arguments, token.Line);
            }
            else if (token.IsName("is"))
            {
                Next();
                bool negated = false;
                if (Current.IsName("not"))
                {
                    Next();
                    negated = true;
                }
                string name = ParseDottedName();
                if (!JinjaTests.IsKnown(name))
                    throw JinjaException.Unsupported($"the test '{name}'", token.Line);
                JinjaArguments arguments = JinjaArguments.None;
                if (Current.IsOperator("("))
                {
                    Next();
                    arguments = ParseArguments();
                }
                else if (StartsTestArgument(Current))
                {
                    arguments = new JinjaArguments([ParsePostfix(ParsePrimary())], []);
                }
                node = new TestExpr(node, name, arguments, negated, token.Line);
            }
            else if (token.IsOperator("("))
            {
                Next();
                node = new CallExpr(node, ParseArguments(), token.Line);
            }
            else
            {
                return node;
            }
        }
    }

    /// <summary>"x is divisibleby 3": a test may take one argument without parentheses (Jinja's parse_test).</summary>
    private static bool StartsTestArgument(JinjaToken token) =>
        token.Kind is JinjaTokenKind.String or JinjaTokenKind.Integer or JinjaTokenKind.Float
        || (token.Kind == JinjaTokenKind.Name && token.Value is not ("else" or "or" or "and" or "is" or "if" or "in" or "not"))
        || token.IsOperator("[") || token.IsOperator("{");

    private string ParseDottedName()
    {
        string name = ExpectName();
        while (Current.IsOperator(".") && Peek().Kind == JinjaTokenKind.Name)
        {
            Next();
            name += "." + Next().Value;
        }
        return name;
    }

}
