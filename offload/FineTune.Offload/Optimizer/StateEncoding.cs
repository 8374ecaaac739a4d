namespace FineTune.Offload.Optimizer;

/// <summary>
/// How a sub-group's states lie in its buffer and its swap extent (n elements):
/// <see cref="Float32Master"/>, (3, n) fp32 [master | m | v], 12 bytes per element;
/// <see cref="Bf16Residual"/>, [m | v] fp32 then the masters' int16 residuals over the bf16 weights
/// (<see cref="Adam.MasterResidual"/>), 10 bytes per element: the weight file holds the other half of each master.
/// </summary>
public enum StateEncoding
{
    Float32Master,
    Bf16Residual,
}

public static class StateEncodingExtensions
{
    public static int BytesPerElement(this StateEncoding encoding) => encoding == StateEncoding.Bf16Residual ? 10 : 12;

    /// <summary>Element bytes of each plane, in buffer order.</summary>
    public static IReadOnlyList<int> PlaneBytes(this StateEncoding encoding) => encoding == StateEncoding.Bf16Residual ? [4, 4, 2] : [4, 4, 4];

    /// <summary>Byte offsets of the m and v planes in a buffer of <paramref name="n"/> elements.</summary>
    public static (long M, long V) MomentOffsets(this StateEncoding encoding, long n) => encoding == StateEncoding.Bf16Residual ? (0, 4 * n) : (4 * n, 8 * n);

    /// <summary>Byte offset of the masters (fp32) or their residuals (int16).</summary>
    public static long MasterOffset(this StateEncoding encoding, long n) => encoding == StateEncoding.Bf16Residual ? 8 * n : 0;

    /// <summary>The name a state file's manifest records.</summary>
    public static string ManifestName(this StateEncoding encoding) => encoding == StateEncoding.Bf16Residual ? "bf16-weight-residual" : "fp32-master";
}
