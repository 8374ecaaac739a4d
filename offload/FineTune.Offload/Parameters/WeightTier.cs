namespace FineTune.Offload.Parameters;

/// <summary>Where a <see cref="ParameterStore"/> keeps the low-precision weights.</summary>
public enum WeightTier
{
    /// <summary>All in one host pool buffer, laid out by parameter (64-byte aligned).</summary>
    Resident,

    /// <summary>In an NVMe weight file laid out as the flat space; the stages in use are read into pool slots.</summary>
    Nvme,
}
