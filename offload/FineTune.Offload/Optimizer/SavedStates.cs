namespace FineTune.Offload.Optimizer;

/// <summary>
/// How a checkpoint took the optimizer states: <paramref name="Linked"/> when it shares the NVMe swap file (no byte
/// copied; the swap writes its next changes to fresh extents), else copied (<paramref name="CopiedByteCount"/>,
/// with <paramref name="WhyCopied"/>); <paramref name="ChecksumReadByteCount"/> is what was read back only to
/// checksum it (sub-groups whose CRC was not kept as they were written).
/// </summary>
public sealed record SavedStates(bool Linked, long ByteCount, long CopiedByteCount, long ChecksumReadByteCount, string? WhyCopied);
