namespace FineTune.Trainer.Jinja;

/// <summary>
/// Evaluated call arguments bound the way Python binds them to a signature: <see cref="Get"/> takes position
/// <c>index</c> or keyword <c>name</c>, else the default; <see cref="Done"/> refuses anything left over.
/// </summary>
internal sealed class JinjaArgs(string function, IReadOnlyList<object?> positional, IReadOnlyDictionary<string, object?> keywords)
{
    private readonly HashSet<string> _used = [];
    private int _positionalUsed;

    public IReadOnlyList<object?> Positional => positional;

    public object? Get(int index, string name, object? defaultValue = null)
    {
        _used.Add(name);
        if (index >= 0 && index < positional.Count)
        {
            _positionalUsed = Math.Max(_positionalUsed, index + 1);
            if (keywords.ContainsKey(name))
                throw JinjaException.Runtime($"{function}() got multiple values for argument '{name}'");
            return positional[index];
        }
        return keywords.TryGetValue(name, out object? value) ? value : defaultValue;
    }

    public string? GetString(int index, string name, string? defaultValue = null) => Get(index, name, defaultValue) switch
    {
        null => null,
        string s => s,
        JinjaUndefined => defaultValue,
        object other => throw JinjaException.Runtime($"{function}() argument '{name}' must be a string, not {JinjaValues.TypeName(other)}"),
    };

    public bool GetBool(int index, string name, bool defaultValue) => JinjaValues.IsTruthy(Get(index, name, defaultValue));

    public long? GetLong(int index, string name, long? defaultValue = null) => Get(index, name, defaultValue) switch
    {
        null => null,
        long l => l,
        bool b => b ? 1 : 0,
        object other => throw JinjaException.Runtime($"{function}() argument '{name}' must be an integer, not {JinjaValues.TypeName(other)}"),
    };

    /// <summary>Refuses positional or keyword arguments no parameter took.</summary>
    public void Done()
    {
        if (positional.Count > _positionalUsed)
            throw JinjaException.Runtime($"{function}() takes {_positionalUsed} positional argument(s) but {positional.Count} were given");
        string? extra = keywords.Keys.FirstOrDefault(k => !_used.Contains(k));
        if (extra is not null)
            throw JinjaException.Runtime($"{function}() got an unexpected keyword argument '{extra}'");
    }
}
