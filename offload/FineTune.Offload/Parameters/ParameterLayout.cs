using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The one flat layout of a model's parameters, computed once and read by every tier: each parameter's element offset
/// in the flat space the optimizer partitions (model order, no padding — also the layout of the NVMe weight file), its
/// byte offset in a resident weight buffer (each parameter on a 64-byte boundary), the sub-groups (the unit of
/// swapping and of update), each stage's range of the flat space (what one slot read brings in) and the flat element
/// where each stage's own parameters begin (backward finalises gradients from the top: everything at or after that
/// element is final once the stage's backward is done). Immutable.
/// </summary>
public sealed class ParameterLayout
{
    private const long ResidentAlignmentByteCount = 64;

    /// <summary>Elements of one norm chunk (<see cref="Adam.CpuAdamW.ChunkElementCount"/>): row blocks start on a multiple of it.</summary>
    private const long NormChunkElementCount = Adam.CpuAdamW.ChunkElementCount;

    private readonly long[] _flatOffsets;
    private readonly long[] _residentOffsets;
    private readonly long[] _gradientOffsets;
    private readonly int?[] _rangeOfStage;
    private readonly IReadOnlyList<LayoutBlock>?[] _blocks;

    /// <param name="parameters">Every parameter, in the flat order.</param>
    /// <param name="stages">The model's stages, in forward order.</param>
    /// <param name="weightType">The low-precision weights' type.</param>
    /// <param name="subGroupElementCount">Requested sub-group size (rounded by the weight type).</param>
    /// <param name="edgeBlockElementCount">
    /// An edge stage's weight larger than this is split into row blocks of at most about this many elements (0: never);
    /// each block starts on a multiple of 64 Ki elements so norm chunks and pages never straddle two blocks.
    /// </param>
    public ParameterLayout(IReadOnlyList<LayoutParameter> parameters, IReadOnlyList<LayoutStage> stages, ElementType weightType, long subGroupElementCount,
        long edgeBlockElementCount = 0)
    {
        Parameters = parameters;
        Stages = stages;
        WeightType = weightType;
        _flatOffsets = new long[parameters.Count];
        _residentOffsets = new long[parameters.Count];
        _gradientOffsets = new long[parameters.Count];
        long flat = 0, resident = 0, gradient = 0;
        for (int p = 0; p < parameters.Count; p++)
        {
            _flatOffsets[p] = flat;
            _residentOffsets[p] = resident;
            _gradientOffsets[p] = gradient;
            flat += parameters[p].ElementCount;
            resident += Align(parameters[p].ElementCount * weightType.ByteCount());
            gradient += Align(parameters[p].ElementCount * 4);
        }
        ElementCount = flat;
        ResidentWeightByteCount = resident;
        GradientByteCount = gradient;
        _blocks = new IReadOnlyList<LayoutBlock>?[stages.Count];
        var splits = new List<long>();
        for (int s = 0; s < stages.Count; s++)
        {
            if (EdgeRowBlocks(stages[s], edgeBlockElementCount) is not { } rows)
                continue;
            int p = stages[s].Uses[0];
            _blocks[s] = rows.Select(r => new LayoutBlock(p, r.First, r.Count, -1)).ToList();
            long rowElements = parameters[p].ElementCount / parameters[p].Shape[0];
            splits.AddRange(rows.Skip(1).Select(r => _flatOffsets[p] + r.First * rowElements));
        }
        // rounded by the weight type whatever the tier, so a checkpoint's sub-groups match under either params tier
        SubGroupElementCount = PartitionedOptimizer.RoundSubGroupElementCount(subGroupElementCount, weightType);
        SubGroups = SubGroup.Partition(parameters.Select(p => p.ElementCount).ToList(), SubGroupElementCount, splits.Distinct().ToList());
        (Ranges, _rangeOfStage, HasEdgeRange) = StageRanges();
    }

    public IReadOnlyList<LayoutParameter> Parameters { get; }

    public IReadOnlyList<LayoutStage> Stages { get; }

    public ElementType WeightType { get; }

    /// <summary>Elements of the flat space (every parameter once).</summary>
    public long ElementCount { get; }

    /// <summary>Bytes of the resident weight buffer (each parameter 64-byte aligned).</summary>
    public long ResidentWeightByteCount { get; }

    /// <summary>Bytes of fp32 gradient accumulators for every parameter (each 64-byte aligned).</summary>
    public long GradientByteCount { get; }

    public long SubGroupElementCount { get; }

    public IReadOnlyList<SubGroup> SubGroups { get; }

    /// <summary>Distinct stage ranges of the flat space (stages with the same range share one: a tied LM head and the embedding).</summary>
    public IReadOnlyList<WeightRange> Ranges { get; }

    /// <summary>True when an embedding or LM head range is larger than every layer's and gets a slot class of its own (class 1).</summary>
    public bool HasEdgeRange { get; }

    public long FlatOffset(int parameter) => _flatOffsets[parameter];

    public long ResidentByteOffset(int parameter) => _residentOffsets[parameter];

    public long GradientByteOffset(int parameter) => _gradientOffsets[parameter];

    /// <summary>The range stage <paramref name="stage"/> computes with; null for a stage without weights, or one computing by blocks.</summary>
    public int? RangeOfStage(int stage) => _rangeOfStage[stage];

    /// <summary>The row blocks stage <paramref name="stage"/> computes with, one at a time; null when it takes its weights whole.</summary>
    public IReadOnlyList<LayoutBlock>? Blocks(int stage) => _blocks[stage];

    /// <summary>The flat element where stage <paramref name="stage"/>'s weights (its range, or its last block) end.</summary>
    public long WeightsEnd(int stage) => _blocks[stage] is { } blocks ? blocks.Max(b => Ranges[b.Range].First + Ranges[b.Range].Count)
        : _rangeOfStage[stage] is int r ? Ranges[r].First + Ranges[r].Count : 0;

    /// <summary>The block of <paramref name="range"/> (a blocked edge weight's rows), or null for a whole-stage range.</summary>
    public LayoutBlock? BlockOfRange(int range) => _blocks.Where(b => b is not null).SelectMany(b => b!).FirstOrDefault(b => b.Range == range);

    /// <summary>The first flat element of the stage's own parameters; null when it owns none (a tied LM head).</summary>
    public long? OwnedFirstElement(int stage) =>
        Stages[stage].Owned.Count == 0 ? null : Stages[stage].Owned.Min(p => _flatOffsets[p]);

    /// <summary>The stage that owns <paramref name="parameter"/>.</summary>
    public int StageOwning(int parameter)
    {
        for (int s = 0; s < Stages.Count; s++)
            if (Stages[s].Owned.Contains(parameter))
                return s;
        throw new ArgumentOutOfRangeException(nameof(parameter), $"Parameter {parameter} belongs to no stage.");
    }

    /// <summary>Row blocks of an edge stage's single 2-D weight when it is larger than <paramref name="blockElements"/>; null otherwise.</summary>
    private List<(long First, long Count)>? EdgeRowBlocks(LayoutStage stage, long blockElements)
    {
        if (blockElements <= 0 || !stage.IsEdge || stage.Uses.Count != 1 || Parameters[stage.Uses[0]].Shape.Length != 2)
            return null;
        LayoutParameter weight = Parameters[stage.Uses[0]];
        if (weight.ElementCount <= blockElements)
            return null;
        long rowElements = weight.Shape[1];
        long align = NormChunkElementCount / (long)System.Numerics.BigInteger.GreatestCommonDivisor(NormChunkElementCount, rowElements);
        long rowsPerBlock = Math.Max(align, blockElements / rowElements / align * align);
        var blocks = new List<(long, long)>();
        for (long first = 0; first < weight.Shape[0]; first += rowsPerBlock)
            blocks.Add((first, Math.Min(rowsPerBlock, weight.Shape[0] - first)));
        return blocks.Count > 1 ? blocks : null;
    }

    private (IReadOnlyList<WeightRange>, int?[], bool) StageRanges()
    {
        var spans = new (long First, long End)?[Stages.Count];
        for (int s = 0; s < Stages.Count; s++)
        {
            IReadOnlyList<int> uses = Stages[s].Uses;
            if (uses.Count > 0 && _blocks[s] is null)
                spans[s] = (uses.Min(p => _flatOffsets[p]), uses.Max(p => _flatOffsets[p] + Parameters[p].ElementCount));
        }
        long layerMax = Enumerable.Range(0, Stages.Count).Where(s => !Stages[s].IsEdge && spans[s] is not null)
            .Select(s => spans[s]!.Value.End - spans[s]!.Value.First).DefaultIfEmpty(0).Max();
        bool blocked = _blocks.Any(b => b is not null);
        bool edge = blocked || Enumerable.Range(0, Stages.Count).Any(s => Stages[s].IsEdge && spans[s] is { } span && span.End - span.First > layerMax);
        var ranges = new List<WeightRange>();
        var rangeOfStage = new int?[Stages.Count];
        for (int s = 0; s < Stages.Count; s++)
        {
            if (_blocks[s] is { } blocks)
            {
                // each block is a range of the edge class; a tied head's blocks are the embedding's
                var withRanges = new List<LayoutBlock>();
                foreach (LayoutBlock block in blocks)
                {
                    long rowElements = Parameters[block.Parameter].ElementCount / Parameters[block.Parameter].Shape[0];
                    var blockRange = new WeightRange(_flatOffsets[block.Parameter] + block.FirstRow * rowElements, block.Rows * rowElements, 1);
                    int found = ranges.IndexOf(blockRange);
                    withRanges.Add(block with { Range = found >= 0 ? found : ranges.Count });
                    if (found < 0)
                        ranges.Add(blockRange);
                }
                _blocks[s] = withRanges;
                continue;
            }
            if (spans[s] is not { } span)
                continue;
            var range = new WeightRange(span.First, span.End - span.First, edge && Stages[s].IsEdge ? 1 : 0);
            int existing = ranges.IndexOf(range);
            rangeOfStage[s] = existing >= 0 ? existing : ranges.Count;
            if (existing < 0)
                ranges.Add(range);
        }
        return (ranges, rangeOfStage, edge);
    }

    private static long Align(long byteCount) => (byteCount + ResidentAlignmentByteCount - 1) / ResidentAlignmentByteCount * ResidentAlignmentByteCount;
}
