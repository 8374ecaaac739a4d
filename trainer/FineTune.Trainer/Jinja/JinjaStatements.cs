namespace FineTune.Trainer.Jinja;

// The statement tree of a template: text, {{ output }}, and the {% %} statements this interpreter implements.

/// <summary>A statement node.</summary>
internal abstract record JinjaNode(int Line);

/// <summary>Template text, already whitespace-controlled by the lexer.</summary>
internal sealed record TextNode(string Text, int Line) : JinjaNode(Line);

/// <summary>{{ expr }}: the value as Python's str() writes it (undefined writes nothing).</summary>
internal sealed record OutputNode(JinjaExpr Value, int Line) : JinjaNode(Line);

/// <summary>{% if %} / {% elif %}* / {% else %}?: the first branch whose test is true runs. No new scope.</summary>
internal sealed record IfNode(IReadOnlyList<(JinjaExpr Test, IReadOnlyList<JinjaNode> Body)> Branches, IReadOnlyList<JinjaNode>? Otherwise, int Line) : JinjaNode(Line);

/// <summary>
/// {% for a[, b] in iterable [if filter] %} body [{% else %} otherwise] {% endfor %}. Each iteration runs in a new
/// scope (a set inside does not leak out), with <c>loop</c> bound; the filter is applied before counting, so
/// loop.length and loop.last see only the kept items. Otherwise runs when nothing was iterated.
/// </summary>
internal sealed record ForNode(IReadOnlyList<string> Targets, JinjaExpr Iterable, JinjaExpr? Filter, IReadOnlyList<JinjaNode> Body,
    IReadOnlyList<JinjaNode>? Otherwise, int Line) : JinjaNode(Line);

/// <summary>{% set a = v %}, {% set a, b = v %} (unpacking) or {% set ns.attr = v %} (a namespace attribute).</summary>
internal sealed record SetNode(IReadOnlyList<string> Targets, string? Attribute, JinjaExpr Value, int Line) : JinjaNode(Line);

/// <summary>{% set a %}body{% endset %}: a is the rendered body.</summary>
internal sealed record SetBlockNode(string Target, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

/// <summary>{% macro name(a, b=default) %}body{% endmacro %}: a callable that renders body with its arguments.</summary>
internal sealed record MacroNode(string Name, IReadOnlyList<(string Name, JinjaExpr? Default)> Parameters, IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);

/// <summary>{% break %} or {% continue %} (Jinja's loopcontrols extension, which transformers enables).</summary>
internal sealed record LoopControlNode(bool IsBreak, int Line) : JinjaNode(Line);

/// <summary>{% generation %}body{% endgeneration %}: transformers' marker of assistant text; renders the body.</summary>
internal sealed record GenerationNode(IReadOnlyList<JinjaNode> Body, int Line) : JinjaNode(Line);
