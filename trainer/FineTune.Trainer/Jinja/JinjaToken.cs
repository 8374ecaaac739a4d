namespace FineTune.Trainer.Jinja;

/// <summary>What a <see cref="JinjaToken"/> is: template text, a tag boundary, or a piece of an expression.</summary>
internal enum JinjaTokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

/// <summary>One token with the 1-based template line it starts on (for error messages). Value holds the text, the
/// name, the operator symbol, or the unescaped string literal.</summary>
internal readonly record struct JinjaToken(JinjaTokenKind Kind, string Value, int Line)
{
    public bool Is(JinjaTokenKind kind, string value) => Kind == kind && Value == value;

    public bool IsOperator(string symbol) => Kind == JinjaTokenKind.Operator && Value == symbol;

    public bool IsName(string name) => Kind == JinjaTokenKind.Name && Value == name;

    public override string ToString() => Kind switch
    {
        JinjaTokenKind.End => "the end of the template",
        JinjaTokenKind.VariableEnd => "'}}'",
        JinjaTokenKind.BlockEnd => "'%}'",
        JinjaTokenKind.String => $"the string '{Value}'",
        _ => $"'{Value}'",
    };
}
