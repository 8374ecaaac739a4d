using FineTune.Offload.Adam;
using FineTune.Offload.Gradients;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Gradients;

/// <summary>Each stage's .grad moved into fp32 host accumulators (copy on the window's first micro-batch, add after).</summary>
internal sealed class AccumulatedGradients : IGradientHarvest
{
    private readonly LlamaModel _model;
    private readonly ParameterLayout _layout;
    private readonly GradientAccumulators _accumulators;

    public AccumulatedGradients(LlamaModel model, ParameterLayout layout, HostMemoryPool pool)
    {
        _model = model;
        _layout = layout;
        _accumulators = new GradientAccumulators(layout, pool);
        Source = new AccumulatorSource(_accumulators);
    }

    public GradientTier Tier => GradientTier.HostAccumulators;

    public IGradientSource Source { get; }

    public nint Address(int parameter) => _accumulators.Address(parameter);

    public void BeginMicroBatch() => _accumulators.BeginMicroBatch();

    public void StageDone(int stage, LayoutBlock? block, StageWeights? weights, bool firstMicroBatch)
    {
        if (block is not null)
        {
            _accumulators.HarvestRows(block.Parameter, block.FirstRow, block.Rows, weights?[_model.Parameters[block.Parameter]], firstMicroBatch);
            return;
        }
        foreach (int p in _layout.Stages[stage].Uses) // before the weights (and their .grad) are let go
            _accumulators.Harvest(p, weights![_model.Parameters[p]], firstMicroBatch);
    }

    public void EndStep() { }

    public void Dispose() => _accumulators.Dispose();

    /// <summary>The accumulators, read in place; the norm in one streaming pass over them.</summary>
    private sealed class AccumulatorSource(GradientAccumulators accumulators) : IGradientSource
    {
        public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment) =>
            (accumulators.Address(segment.Parameter) + (nint)(segment.ParameterOffset * 4), ElementType.Float32);

        public double SumOfSquares(int maxDegreeOfParallelism) => GradientNorm.SumOfSquares(accumulators.Buffers, maxDegreeOfParallelism);
    }
}
