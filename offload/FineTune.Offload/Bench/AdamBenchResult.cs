namespace FineTune.Offload.Bench;

/// <summary>Figures of `finetune bench adam`: our fused CPU AdamW, libtorch's AdamW, and the memory-bandwidth bound.</summary>
public sealed record AdamBenchResult(
    long ParamCount,
    int ThreadCount,
    double OursParamsPerSecond,
    double TorchParamsPerSecond,
    double TriadBytesPerSecond,
    int BytesPerParam)
{
    /// <summary>Params/s if the fused pass moved its bytes at the triad's bandwidth.</summary>
    public double BoundParamsPerSecond => TriadBytesPerSecond / BytesPerParam;

    public double SpeedupOverTorch => OursParamsPerSecond / TorchParamsPerSecond;

    public double FractionOfBound => OursParamsPerSecond / BoundParamsPerSecond;
}
