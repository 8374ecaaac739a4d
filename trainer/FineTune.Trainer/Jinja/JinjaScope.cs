namespace FineTune.Trainer.Jinja;

/// <summary>
/// Variables visible at one point of a render: the template's own top level over the caller's variables and the
/// globals, each for-loop iteration and each macro call a child scope. {% set %} writes to the innermost scope, so
/// a set inside a loop body is gone after the iteration (why templates use namespace()), while a set inside an if
/// lands in the enclosing scope, as in Jinja2.
/// </summary>
internal sealed class JinjaScope
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);
    private readonly JinjaScope? _parent;

    public JinjaScope(JinjaScope? parent) => _parent = parent;

    public object? Lookup(string name)
    {
        for (JinjaScope? scope = this; scope is not null; scope = scope._parent)
        {
            if (scope._variables.TryGetValue(name, out object? value))
                return value;
        }
        return new JinjaUndefined($"'{name}' is undefined");
    }

    public void Set(string name, object? value) => _variables[name] = value;
}
