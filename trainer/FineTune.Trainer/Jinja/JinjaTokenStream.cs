namespace FineTune.Trainer.Jinja;

/// <summary>The parsers' cursor over the lexer's tokens (the last token is End, which reading never passes).</summary>
internal sealed class JinjaTokenStream(List<JinjaToken> tokens)
{
    private int _pos;

    public JinjaToken Current => tokens[Math.Min(_pos, tokens.Count - 1)];

    public JinjaToken Peek(int ahead = 1) => tokens[Math.Min(_pos + ahead, tokens.Count - 1)];

    public JinjaToken Next() => tokens[Math.Min(_pos++, tokens.Count - 1)];

    public void Advance(int count) => _pos += count;

    public string ExpectName()
    {
        JinjaToken token = Next();
        return token.Kind == JinjaTokenKind.Name ? token.Value : throw JinjaException.Syntax($"a name was expected, not {token}", token.Line);
    }

    public void ExpectOperator(string symbol)
    {
        JinjaToken token = Next();
        if (!token.IsOperator(symbol))
            throw JinjaException.Syntax($"'{symbol}' was expected, not {token}", token.Line);
    }

    public void Expect(JinjaTokenKind kind)
    {
        JinjaToken token = Next();
        if (token.Kind != kind)
            throw JinjaException.Syntax($"{new JinjaToken(kind, "", 0)} was expected, not {token}", token.Line);
    }
}
