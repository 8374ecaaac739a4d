using System.Text.Json;
using System.Text.Json.Nodes;

namespace FineTune.Trainer.Models;

/// <summary>
/// Typed, optional reads of config.json fields. A field that is absent or JSON null reads as null; a field of the
/// wrong type is a <see cref="UserErrorException"/> naming the file and the field (with its dotted path for nested
/// objects such as rope_scaling.factor).
/// </summary>
internal sealed class JsonFields
{
    private readonly JsonObject _object;
    private readonly string _sourceName;
    private readonly string _prefix;

    public JsonFields(JsonObject obj, string sourceName, string prefix = "")
    {
        _object = obj;
        _sourceName = sourceName;
        _prefix = prefix;
    }

    public string RequiredString(string field) =>
        String(field) ?? throw new UserErrorException($"{_sourceName}: required field {_prefix}{field} is missing.");

    public int RequiredInt(string field) =>
        Int(field) ?? throw new UserErrorException($"{_sourceName}: required field {_prefix}{field} is missing.");

    public double RequiredDouble(string field) =>
        Double(field) ?? throw new UserErrorException($"{_sourceName}: required field {_prefix}{field} is missing.");

    public string? String(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return null;
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.String)
            return value.GetValue<string>();
        throw WrongType(field, "a string");
    }

    public bool? Bool(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return null;
        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(field, "true or false"),
        };
    }

    public double? Double(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return null;
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number)
            return value.GetValue<double>();
        throw WrongType(field, "a number");
    }

    public int? Int(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return null;
        return ToInt(node, field);
    }

    /// <summary>An int, a list of ints, or null (empty list), as eos_token_id may be written.</summary>
    public IReadOnlyList<int> IntOrIntList(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return [];
        if (node is JsonArray array)
            return array.Select(item => item is null ? throw WrongType(field, "an integer or a list of integers") : ToInt(item, field)).ToArray();
        return [ToInt(node, field)];
    }

    public IReadOnlyList<string>? StringList(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return null;
        if (node is not JsonArray array)
            throw WrongType(field, "a list of strings");
        return array.Select(item => item is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>()
            : throw WrongType(field, "a list of strings")).ToArray();
    }

    /// <summary>A nested object (rope_scaling, rope_parameters) or null.</summary>
    public JsonFields? Object(string field)
    {
        JsonNode? node = _object[field];
        if (node is null)
            return null;
        if (node is not JsonObject nested)
            throw WrongType(field, "an object");
        return new JsonFields(nested, _sourceName, _prefix + field + ".");
    }

    private int ToInt(JsonNode node, string field)
    {
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number)
        {
            double number = value.GetValue<double>();
            if (number == Math.Floor(number) && number >= int.MinValue && number <= int.MaxValue)
                return (int)number;
        }
        throw WrongType(field, "an integer");
    }

    private UserErrorException WrongType(string field, string expected) =>
        new($"{_sourceName}: field {_prefix}{field} must be {expected}.");
}
