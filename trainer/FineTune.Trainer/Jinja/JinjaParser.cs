using System.Globalization;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// Builds the statement and expression trees from <see cref="JinjaLexer"/> tokens, with Jinja2's grammar and
/// precedence (lowest first): "a if c else b", or, and, not, comparisons and "in" (chained), + -, ~, * / // %, **,
/// unary - +, then postfix .attr [index] [a:b:c] (call), then | filter and "is" test, which bind tighter than any
/// operator: <c>x | trim + 'a'</c> is <c>(x | trim) + 'a'</c>. Statements: if/elif/else, for (with "if" filter
/// and else), set (plain, unpacking, namespace attribute, block), macro, break/continue, generation. Any other
/// statement, and every filter or test name it does not know, is refused here, before anything renders.
/// reference: jinja2/parser.py (parse_statement, parse_for, parse_set, parse_condexpr .. parse_filter_expr).
/// </summary>
internal sealed class JinjaParser
{
    private static readonly HashSet<string> s_comparisons = ["==", "!=", "<", ">", "<=", ">="];
    private readonly List<JinjaToken> _tokens;
    private int _pos;

    private JinjaParser(List<JinjaToken> tokens) => _tokens = tokens;

    public static IReadOnlyList<JinjaNode> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source));
        return parser.ParseBody([], out _);
    }

    private JinjaToken Current => _tokens[_pos];

    private JinjaToken Peek(int ahead = 1) => _tokens[Math.Min(_pos + ahead, _tokens.Count - 1)];

    private JinjaToken Next() => _tokens[_pos++];

    /// <summary>Statements until one of <paramref name="endNames"/> opens a block (consumed: its name is returned), or the end.</summary>
    private List<JinjaNode> ParseBody(string[] endNames, out string endName)
    {
        var body = new List<JinjaNode>();
        while (true)
        {
            JinjaToken token = Current;
            switch (token.Kind)
            {
                case JinjaTokenKind.End:
                    if (endNames.Length > 0)
                        throw JinjaException.Syntax($"the template ends where '{{% {string.Join("' or '{% ", endNames)} %}}' was expected", token.Line);
                    endName = "";
                    return body;
                case JinjaTokenKind.Text:
                    body.Add(new TextNode(Next().Value, token.Line));
                    break;
                case JinjaTokenKind.VariableBegin:
                    Next();
                    body.Add(new OutputNode(ParseTuple(withCondition: true), token.Line));
                    Expect(JinjaTokenKind.VariableEnd);
                    break;
                default: // BlockBegin
                    Next();
                    JinjaToken name = Current;
                    if (name.Kind == JinjaTokenKind.Name && endNames.Contains(name.Value))
                    {
                        Next();
                        endName = name.Value;
                        return body;
                    }
                    body.Add(ParseStatement());
                    break;
            }
        }
    }

    private JinjaNode ParseStatement()
    {
        JinjaToken name = Current;
        if (name.Kind != JinjaTokenKind.Name)
            throw JinjaException.Syntax($"a statement name was expected after '{{%', not {name}", name.Line);
        Next();
        switch (name.Value)
        {
            case "if": return ParseIf(name.Line);
            case "for": return ParseFor(name.Line);
            case "set": return ParseSet(name.Line);
            case "macro": return ParseMacro(name.Line);
            case "break":
            case "continue":
                Expect(JinjaTokenKind.BlockEnd);
                return new LoopControlNode(name.Value == "break", name.Line);
            case "generation":
                Expect(JinjaTokenKind.BlockEnd);
                List<JinjaNode> generated = ParseBody(["endgeneration"], out _);
                Expect(JinjaTokenKind.BlockEnd);
                return new GenerationNode(generated, name.Line);
            default:
                if (name.Value.StartsWith("end", StringComparison.Ordinal) || name.Value is "elif" or "else")
                    throw JinjaException.Syntax($"'{{% {name.Value} %}}' has no opening statement", name.Line);
                throw JinjaException.Unsupported($"the '{{% {name.Value} %}}' statement", name.Line);
        }
    }

    private IfNode ParseIf(int line)
    {
        var branches = new List<(JinjaExpr, IReadOnlyList<JinjaNode>)>();
        JinjaExpr test = ParseTuple(withCondition: false);
        while (true)
        {
            Expect(JinjaTokenKind.BlockEnd);
            List<JinjaNode> body = ParseBody(["elif", "else", "endif"], out string end);
            branches.Add((test, body));
            if (end == "elif")
            {
                test = ParseTuple(withCondition: false);
                continue;
            }
            List<JinjaNode>? otherwise = null;
            if (end == "else")
            {
                Expect(JinjaTokenKind.BlockEnd);
                otherwise = ParseBody(["endif"], out _);
            }
            Expect(JinjaTokenKind.BlockEnd);
            return new IfNode(branches, otherwise, line);
        }
    }

    private ForNode ParseFor(int line)
    {
        List<string> targets = ParseTargetNames();
        if (!Current.IsName("in"))
            throw JinjaException.Syntax($"'in' was expected in a for statement, not {Current}", Current.Line);
        Next();
        JinjaExpr iterable = ParseTuple(withCondition: false);
        JinjaExpr? filter = null;
        if (Current.IsName("if"))
        {
            Next();
            filter = ParseExpression();
        }
        if (Current.IsName("recursive"))
            throw JinjaException.Unsupported("a recursive for loop", Current.Line);
        Expect(JinjaTokenKind.BlockEnd);
        List<JinjaNode> body = ParseBody(["else", "endfor"], out string end);
        List<JinjaNode>? otherwise = null;
        if (end == "else")
        {
            Expect(JinjaTokenKind.BlockEnd);
            otherwise = ParseBody(["endfor"], out _);
        }
        Expect(JinjaTokenKind.BlockEnd);
        return new ForNode(targets, iterable, filter, body, otherwise, line);
    }

    private JinjaNode ParseSet(int line)
    {
        string first = ExpectName();
        if (Current.IsOperator("."))
        {
            Next();
            string attribute = ExpectName();
            ExpectOperator("=");
            JinjaExpr value = ParseTuple(withCondition: true);
            Expect(JinjaTokenKind.BlockEnd);
            return new SetNode([first], attribute, value, line);
        }
        var targets = new List<string> { first };
        while (Current.IsOperator(","))
        {
            Next();
            targets.Add(ExpectName());
        }
        if (Current.Kind == JinjaTokenKind.BlockEnd && targets.Count == 1)
        {
            Next();
            List<JinjaNode> body = ParseBody(["endset"], out _);
            Expect(JinjaTokenKind.BlockEnd);
            return new SetBlockNode(first, body, line);
        }
        if (Current.IsOperator("|"))
            throw JinjaException.Unsupported("a filtered block set ('{% set x | filter %}')", Current.Line);
        ExpectOperator("=");
        JinjaExpr assigned = ParseTuple(withCondition: true);
        Expect(JinjaTokenKind.BlockEnd);
        return new SetNode(targets, null, assigned, line);
    }

    private MacroNode ParseMacro(int line)
    {
        string name = ExpectName();
        ExpectOperator("(");
        var parameters = new List<(string, JinjaExpr?)>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0)
                ExpectOperator(",");
            string parameter = ExpectName();
            JinjaExpr? defaultValue = null;
            if (Current.IsOperator("="))
            {
                Next();
                defaultValue = ParseExpression();
            }
            parameters.Add((parameter, defaultValue));
        }
        Next();
        Expect(JinjaTokenKind.BlockEnd);
        List<JinjaNode> body = ParseBody(["endmacro"], out _);
        if (Current.Kind == JinjaTokenKind.Name)
            Next(); // {% endmacro name %}
        Expect(JinjaTokenKind.BlockEnd);
        return new MacroNode(name, parameters, body, line);
    }

    /// <summary>for-loop targets: a, or a, b, or (a, b).</summary>
    private List<string> ParseTargetNames()
    {
        bool parenthesized = Current.IsOperator("(");
        if (parenthesized)
            Next();
        var names = new List<string> { ExpectName() };
        while (Current.IsOperator(","))
        {
            Next();
            names.Add(ExpectName());
        }
        if (parenthesized)
            ExpectOperator(")");
        return names;
    }

    // ---- expressions, lowest precedence first -------------------------------------------------------------

    /// <summary>An expression, or a tuple "a, b" (a list value) when commas follow.</summary>
    private JinjaExpr ParseTuple(bool withCondition)
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

    private JinjaExpr ParseExpression()
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
                _pos += 2;
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

    private string ExpectName()
    {
        JinjaToken token = Next();
        return token.Kind == JinjaTokenKind.Name ? token.Value : throw JinjaException.Syntax($"a name was expected, not {token}", token.Line);
    }

    private void ExpectOperator(string symbol)
    {
        JinjaToken token = Next();
        if (!token.IsOperator(symbol))
            throw JinjaException.Syntax($"'{symbol}' was expected, not {token}", token.Line);
    }

    private void Expect(JinjaTokenKind kind)
    {
        JinjaToken token = Next();
        if (token.Kind != kind)
            throw JinjaException.Syntax($"{new JinjaToken(kind, "", 0)} was expected, not {token}", token.Line);
    }
}
