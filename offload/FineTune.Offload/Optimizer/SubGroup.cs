namespace FineTune.Offload.Optimizer;

/// <summary>
/// A contiguous slice of the flattened parameters, the unit the optimizer swaps and updates. Its states are one
/// flat buffer, one extent in swap, laid out by its <see cref="Encoding"/>: (3, ElementCount) fp32 = [master | m | v],
/// or m, v and the masters' residuals over the bf16 weights.
/// </summary>
public sealed class SubGroup
{
    internal SubGroup(int index, long firstElement, long elementCount, IReadOnlyList<SubGroupSegment> segments)
    {
        Index = index;
        FirstElement = firstElement;
        ElementCount = elementCount;
        Segments = segments;
    }

    public int Index { get; }

    /// <summary>Offset of the first element in the flattened parameter space.</summary>
    public long FirstElement { get; }

    public long ElementCount { get; }

    public IReadOnlyList<SubGroupSegment> Segments { get; }

    public StateEncoding Encoding { get; private init; }

    /// <summary>Bytes of master (or its residual) + m + v.</summary>
    public long StateByteCount => Encoding.BytesPerElement() * ElementCount;

    /// <summary>The same slice of the flat space under another index (a rank's share of the layout's sub-groups, indexed 0..k-1).</summary>
    public SubGroup Reindexed(int index) => new(index, FirstElement, ElementCount, Segments) { Encoding = Encoding };

    /// <summary>The same sub-group with its states laid out as <paramref name="encoding"/>.</summary>
    public SubGroup Encoded(StateEncoding encoding) => encoding == Encoding ? this : new(Index, FirstElement, ElementCount, Segments) { Encoding = encoding };

    /// <summary>
    /// Splits the parameters, in order, into sub-groups of <paramref name="subGroupElementCount"/> elements (the last
    /// one holds the rest). A parameter may span sub-groups; each piece is one segment.
    /// </summary>
    public static IReadOnlyList<SubGroup> Partition(IReadOnlyList<long> parameterElementCounts, long subGroupElementCount) =>
        Partition(parameterElementCounts, subGroupElementCount, []);

    /// <summary>
    /// As <see cref="Partition(IReadOnlyList{long}, long)"/>, with segments also split at <paramref name="splitElements"/>
    /// (flat elements inside parameters, e.g. where a large embedding's row blocks meet): a sub-group covering such a
    /// point has two segments of the same parameter, so each segment's gradients can come from one block.
    /// </summary>
    public static IReadOnlyList<SubGroup> Partition(IReadOnlyList<long> parameterElementCounts, long subGroupElementCount, IReadOnlyCollection<long> splitElements)
    {
        var splits = new SortedSet<long>(splitElements);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(subGroupElementCount);
        long total = parameterElementCounts.Sum();
        var groups = new List<SubGroup>();
        int parameter = 0;
        long parameterOffset = 0;
        for (long first = 0; first < total; first += subGroupElementCount)
        {
            long count = Math.Min(subGroupElementCount, total - first);
            var segments = new List<SubGroupSegment>();
            long filled = 0;
            while (filled < count)
            {
                long available = parameterElementCounts[parameter] - parameterOffset;
                long take = Math.Min(available, count - filled);
                // the next split point inside this piece ends the segment there
                long at = first + filled;
                if (splits.Count > 0 && take > 1 && splits.GetViewBetween(at + 1, at + take - 1) is { Count: > 0 } inside)
                    take = inside.Min - at;
                if (take > 0)
                    segments.Add(new SubGroupSegment(parameter, parameterOffset, filled, take));
                filled += take;
                parameterOffset += take;
                if (parameterOffset == parameterElementCounts[parameter])
                {
                    parameter++;
                    parameterOffset = 0;
                }
            }
            groups.Add(new SubGroup(groups.Count, first, count, segments));
        }
        return groups;
    }
}
