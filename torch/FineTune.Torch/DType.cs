namespace FineTune.Torch;

/// <summary>Element types the binding supports. The numeric values are the shim's dtype codes (shim.h).</summary>
public enum DType
{
    Float32 = 0,
    Float64 = 1,
    BFloat16 = 2,
    Float16 = 3,
    Int64 = 4,
    Int32 = 5,
    UInt8 = 6,
    Bool = 7,
}
