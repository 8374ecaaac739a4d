namespace FineTune.Trainer.Models;

/// <summary>
/// Reads rope_theta and the RoPE scaling from config.json, in both spellings transformers has used: top-level
/// rope_theta + rope_scaling {rope_type (or legacy "type"), factor, ...}, and the newer rope_parameters
/// {rope_type, rope_theta, factor, ...}. A top-level rope_theta wins over rope_parameters.rope_theta; a non-null
/// rope_scaling wins over rope_parameters. Kinds other than default, linear and llama3 are refused, naming the field.
/// reference: transformers modeling_rope_utils.py (rope_config_validation, _validate_llama3_parameters).
/// </summary>
internal static class RopeReader
{
    public static (double Theta, RopeScaling Scaling) Read(JsonFields fields, string sourceName)
    {
        JsonFields? parameters = fields.Object("rope_parameters");
        double theta = fields.Double("rope_theta") ?? parameters?.Double("rope_theta") ?? 10000.0;

        string fieldName = "rope_scaling";
        JsonFields? scaling = fields.Object("rope_scaling");
        if (scaling is null && parameters is not null)
        {
            scaling = parameters;
            fieldName = "rope_parameters";
        }
        CheckFullRotary(fields.Double("partial_rotary_factor"), "partial_rotary_factor", sourceName);
        if (scaling is null)
            return (theta, RopeScaling.None);
        CheckFullRotary(scaling.Double("partial_rotary_factor"), fieldName + ".partial_rotary_factor", sourceName);

        string kind = scaling.String("rope_type") ?? scaling.String("type") ?? "default";
        return kind switch
        {
            "default" => (theta, RopeScaling.None),
            "linear" => (theta, new RopeScaling { Kind = RopeScalingKind.Linear, Factor = scaling.RequiredDouble("factor") }),
            "llama3" => (theta, new RopeScaling
            {
                Kind = RopeScalingKind.Llama3,
                Factor = scaling.RequiredDouble("factor"),
                LowFreqFactor = scaling.RequiredDouble("low_freq_factor"),
                HighFreqFactor = scaling.RequiredDouble("high_freq_factor"),
                OriginalMaxPositionEmbeddings = scaling.RequiredInt("original_max_position_embeddings"),
            }),
            _ => throw new UserErrorException(
                $"{sourceName}: {fieldName}.rope_type \"{kind}\" is not supported; FineTune implements default, linear and llama3."),
        };
    }

    private static void CheckFullRotary(double? factor, string field, string sourceName)
    {
        if (factor is not null && factor != 1.0)
            throw new UserErrorException($"{sourceName}: {field} {factor} is not supported; only full rotary embeddings (1.0) are.");
    }
}
