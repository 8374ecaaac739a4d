namespace FineTune.Offload.Adam;

/// <summary>Element type of a host buffer the optimizer reads gradients from or writes weights to.</summary>
public enum ElementType
{
    Float32,
    BFloat16,
    Float16,
}

/// <summary>Sizes of <see cref="ElementType"/> values.</summary>
public static class ElementTypeExtensions
{
    public static int ByteCount(this ElementType type) => type switch
    {
        ElementType.Float32 => 4,
        ElementType.BFloat16 => 2,
        ElementType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
