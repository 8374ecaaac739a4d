namespace FineTune.Offload.Parameters;

/// <summary>
/// One row block of a large edge weight (an embedding or LM head of V rows): rows [FirstRow, FirstRow + Rows) of
/// parameter <see cref="Parameter"/>, read into a slot as weight range <see cref="Range"/>. A stage computing with a
/// blocked weight goes through its blocks one at a time, so host memory holds one block, not the whole vocabulary.
/// </summary>
public sealed record LayoutBlock(int Parameter, long FirstRow, long Rows, int Range);
