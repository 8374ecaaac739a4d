namespace FineTune.Trainer.Jinja;

/// <summary>
/// A template that cannot be parsed or rendered. <see cref="Kind"/> says why; for <see cref="JinjaErrorKind.Raised"/>
/// the message is exactly the template's raise_exception argument (what Jinja2's TemplateError carries), otherwise it
/// names the construct and the template line.
/// </summary>
public sealed class JinjaException : Exception
{
    private readonly string _what;

    private JinjaException(JinjaErrorKind kind, string what, int line)
        : base(what)
    {
        Kind = kind;
        _what = what;
        Line = line;
    }

    public JinjaErrorKind Kind { get; }

    /// <summary>1-based template line, 0 when not known.</summary>
    public int Line { get; }

    public override string Message => Kind switch
    {
        JinjaErrorKind.Raised => _what,
        JinjaErrorKind.Unsupported => $"{Detail} is not supported by FineTune's Jinja interpreter",
        _ => Detail,
    };

    /// <summary>What failed and where, without the "is not supported" ending: for an unsupported construct its name and line.</summary>
    public string Detail => $"{_what}{LineText}";

    private string LineText => Line > 0 ? $" (template line {Line})" : "";

    internal static JinjaException Syntax(string what, int line) => new(JinjaErrorKind.Syntax, what, line);

    internal static JinjaException Unsupported(string construct, int line = 0) => new(JinjaErrorKind.Unsupported, construct, line);

    internal static JinjaException Raised(string message) => new(JinjaErrorKind.Raised, message, 0);

    internal static JinjaException Runtime(string what, int line = 0) => new(JinjaErrorKind.Runtime, what, line);

    /// <summary>The same error with a line attached, for errors raised below the evaluator that knows the line.</summary>
    internal JinjaException AtLine(int line) => Line > 0 || line <= 0 || Kind == JinjaErrorKind.Raised ? this : new(Kind, _what, line);
}
