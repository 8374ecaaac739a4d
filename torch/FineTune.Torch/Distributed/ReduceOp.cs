namespace FineTune.Torch.Distributed;

/// <summary>How a collective combines the ranks' elements (codes match the native shim's). Gloo has no average:
/// sum, then scale by 1 / world size.</summary>
public enum ReduceOp
{
    Sum = 0,
    Product = 1,
    Min = 2,
    Max = 3,
}
