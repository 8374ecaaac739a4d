namespace FineTune.Offload.Parameters;

/// <summary>
/// One stage of the model as the layout sees it: the parameters it owns (its gradients are final once its backward
/// is done) and the parameters it computes with (a tied LM head computes with the embedding's and owns none).
/// Indices into <see cref="ParameterLayout.Parameters"/>.
/// </summary>
public sealed record LayoutStage(IReadOnlyList<int> Owned, IReadOnlyList<int> Uses)
{
    /// <summary>True for the embedding and LM head (their weights get a slot class of their own when larger than a layer).</summary>
    public bool IsEdge { get; init; }
}
