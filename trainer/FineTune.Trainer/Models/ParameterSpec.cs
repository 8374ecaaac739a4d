namespace FineTune.Trainer.Models;

/// <summary>One named parameter of a model: its HF tensor name and its shape (PyTorch order, nn.Linear is [out, in]).</summary>
public sealed record ParameterSpec(string Name, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (product, dim) => product * dim);

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
