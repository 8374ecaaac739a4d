namespace FineTune.Trainer.Jinja;

/// <summary>
/// Builds the statement tree of a template from <see cref="JinjaLexer"/> tokens (expressions by
/// <see cref="JinjaExpressionParser"/>). Statements: if/elif/else, for (with "if" filter and else), set (plain,
/// unpacking, namespace attribute, block), macro, break/continue, generation; any other statement is refused here,
/// naming it, before anything renders.
/// reference: jinja2/parser.py (subparse, parse_statement, parse_if, parse_for, parse_set, parse_macro).
/// </summary>
internal sealed class JinjaParser
{
    private readonly JinjaTokenStream _tokens;
    private readonly JinjaExpressionParser _expressions;

    private JinjaParser(List<JinjaToken> tokens)
    {
        _tokens = new JinjaTokenStream(tokens);
        _expressions = new JinjaExpressionParser(_tokens);
    }

    public static IReadOnlyList<JinjaNode> Parse(string source) => new JinjaParser(JinjaLexer.Tokenize(source)).ParseBody([], out _);

    private JinjaToken Current => _tokens.Current;

    private JinjaToken Peek(int ahead = 1) => _tokens.Peek(ahead);

    private JinjaToken Next() => _tokens.Next();

    private string ExpectName() => _tokens.ExpectName();

    private void ExpectOperator(string symbol) => _tokens.ExpectOperator(symbol);

    private void Expect(JinjaTokenKind kind) => _tokens.Expect(kind);

    private JinjaExpr ParseTuple(bool withCondition) => _expressions.ParseTuple(withCondition);

    private JinjaExpr ParseExpression() => _expressions.ParseExpression();

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
}
