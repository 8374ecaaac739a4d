using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// A parsed Jinja template, rendered as transformers renders chat templates: Jinja2 with trim_blocks,
/// lstrip_blocks and loopcontrols in an immutable sandbox, tojson as json.dumps without HTML escaping, and the
/// globals raise_exception and strftime_now. Parsing refuses (with <see cref="JinjaErrorKind.Unsupported"/>, naming
/// it) any statement, filter or test this interpreter does not implement, so a template either renders as Jinja2
/// would or not at all. Thread-safe: a render keeps its state in its own scopes.
/// Not implemented: template inheritance and includes, call blocks, filter blocks, recursive loops, *args/**kwargs,
/// string formatting with %, autoescaping.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<JinjaNode> _body;

    private JinjaTemplate(IReadOnlyList<JinjaNode> body) => _body = body;

    /// <summary>Parses <paramref name="source"/>; throws <see cref="JinjaException"/> (Syntax or Unsupported).</summary>
    public static JinjaTemplate Parse(string source) => new(JinjaParser.Parse(source));

    /// <summary>
    /// Renders with <paramref name="variables"/>: strings, numbers, bools, null, lists, string-keyed dictionaries and
    /// System.Text.Json elements. <paramref name="now"/> is what strftime_now formats (default: the current time).
    /// Throws <see cref="JinjaException"/>: Raised when the template calls raise_exception, Runtime or Unsupported otherwise.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables, DateTime? now = null)
    {
        var globals = new JinjaScope(null);
        JinjaGlobals.AddTo(globals, now ?? DateTime.Now);
        var top = new JinjaScope(globals);
        foreach (var (name, value) in variables)
            top.Set(name, JinjaValues.FromClr(value));
        var output = new StringBuilder();
        JinjaRenderer.Render(_body, top, output);
        return output.ToString();
    }
}
