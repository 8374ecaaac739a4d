namespace FineTune.IO.Safetensors;

/// <summary>
/// Element types of the safetensors format, in the reference declaration order (increasing alignment), which the
/// writer's ordering depends on: tensors are laid out by this order descending, then by name.
/// reference: huggingface/safetensors safetensors/src/tensor.rs `enum Dtype` (derives Ord).
/// Sizes: <see cref="SafetensorsDTypes.ElementByteCount"/>.
/// </summary>
public enum SafetensorsDType
{
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}
