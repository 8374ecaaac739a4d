namespace FineTune.Offload.Optimizer;

/// <summary>The part of one parameter that falls in a sub-group: elements [ParameterOffset, +ElementCount) of
/// parameter <see cref="Parameter"/> sit at [GroupOffset, +ElementCount) of the sub-group's flat state.</summary>
public readonly record struct SubGroupSegment(int Parameter, long ParameterOffset, long GroupOffset, long ElementCount);
