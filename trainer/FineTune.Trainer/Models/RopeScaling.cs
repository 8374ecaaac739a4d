namespace FineTune.Trainer.Models;

/// <summary>The rope_scaling variants FineTune implements. Others (dynamic, yarn, longrope) are refused.</summary>
public enum RopeScalingKind
{
    /// <summary>No scaling: inv_freq = 1 / theta^(2i/d).</summary>
    Default,

    /// <summary>Position interpolation: inv_freq / factor.</summary>
    Linear,

    /// <summary>Llama 3.1's smooth wavelength-dependent interpolation.</summary>
    Llama3,
}

/// <summary>
/// rope_scaling from config.json and the inverse frequencies it produces. attention_scaling is 1 for all three
/// supported kinds, so cos/sin are not rescaled.
/// reference: transformers modeling_rope_utils.py (_compute_default_rope_parameters,
/// _compute_linear_scaling_rope_parameters, _compute_llama3_parameters).
/// </summary>
public sealed record RopeScaling
{
    public static readonly RopeScaling None = new() { Kind = RopeScalingKind.Default };

    public required RopeScalingKind Kind { get; init; }

    /// <summary>factor (linear, llama3).</summary>
    public double Factor { get; init; } = 1.0;

    /// <summary>low_freq_factor (llama3).</summary>
    public double LowFreqFactor { get; init; } = 1.0;

    /// <summary>high_freq_factor (llama3).</summary>
    public double HighFreqFactor { get; init; } = 4.0;

    /// <summary>original_max_position_embeddings (llama3).</summary>
    public int OriginalMaxPositionEmbeddings { get; init; } = 8192;

    public void Validate(string sourceName)
    {
        if (Kind == RopeScalingKind.Default)
            return;
        if (!(Factor > 0))
            throw new UserErrorException($"{sourceName}: rope_scaling.factor ({Factor}) must be positive.");
        if (Kind == RopeScalingKind.Llama3)
        {
            if (!(HighFreqFactor > LowFreqFactor) || !(LowFreqFactor > 0))
                throw new UserErrorException(
                    $"{sourceName}: rope_scaling needs 0 < low_freq_factor ({LowFreqFactor}) < high_freq_factor ({HighFreqFactor}).");
            if (OriginalMaxPositionEmbeddings <= 0)
                throw new UserErrorException(
                    $"{sourceName}: rope_scaling.original_max_position_embeddings ({OriginalMaxPositionEmbeddings}) must be positive.");
        }
    }

    /// <summary>
    /// The head_dim/2 inverse frequencies, rounded to float32 at the same points as transformers computes them in
    /// float32 tensors (exponent, power, reciprocal, then the scaling formula).
    /// </summary>
    public float[] InverseFrequencies(int headDim, double theta)
    {
        var inverse = new float[headDim / 2];
        for (int i = 0; i < inverse.Length; i++)
        {
            float exponent = (float)(2 * i) / headDim;
            float power = (float)Math.Pow(theta, exponent);
            inverse[i] = 1.0f / power;
        }
        switch (Kind)
        {
            case RopeScalingKind.Default:
                break;
            case RopeScalingKind.Linear:
                for (int i = 0; i < inverse.Length; i++)
                    inverse[i] = (float)(inverse[i] / Factor);
                break;
            case RopeScalingKind.Llama3:
                ApplyLlama3(inverse);
                break;
        }
        return inverse;
    }

    private void ApplyLlama3(float[] inverse)
    {
        // Wavelengths shorter than old_context/high_freq_factor keep their frequency, longer than
        // old_context/low_freq_factor are divided by factor, and those between are blended by smooth_factor.
        float factor = (float)Factor;
        float lowFreqWavelen = (float)(OriginalMaxPositionEmbeddings / LowFreqFactor);
        float highFreqWavelen = (float)(OriginalMaxPositionEmbeddings / HighFreqFactor);
        for (int i = 0; i < inverse.Length; i++)
        {
            float invFreq = inverse[i];
            float wavelen = (float)(2 * Math.PI) / invFreq;
            float scaled = wavelen > lowFreqWavelen ? invFreq / factor : invFreq;
            bool medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
            if (medium)
            {
                float smooth = (float)((OriginalMaxPositionEmbeddings / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor));
                scaled = (1 - smooth) * scaled / factor + smooth * scaled;
            }
            inverse[i] = scaled;
        }
    }
}
