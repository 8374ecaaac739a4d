namespace FineTune.Trainer.Jinja;

/// <summary>Why a template could not be parsed or rendered.</summary>
public enum JinjaErrorKind
{
    /// <summary>The template text is not valid Jinja (Jinja2 would raise TemplateSyntaxError).</summary>
    Syntax,

    /// <summary>Valid Jinja that this interpreter does not implement (a statement, filter, test or method); the
    /// message names it. Never rendered approximately.</summary>
    Unsupported,

    /// <summary>The template called raise_exception(message): it refuses the conversation (Jinja2's TemplateError).</summary>
    Raised,

    /// <summary>An error while rendering that Jinja2 raises too: an undefined value used in arithmetic, a type error.</summary>
    Runtime,
}
