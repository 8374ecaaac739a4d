namespace FineTune.Offload.Parameters;

/// <summary>One parameter as the flat layout sees it: its name and shape (row-major, PyTorch order).</summary>
public sealed record LayoutParameter(string Name, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (product, dim) => product * dim);
}
