using FineTune.Offload.Adam;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

// Added by the training step (train branch), kept apart from the offload helper's PartitionedOptimizer.cs:
// a step that updates sub-groups from the last to the first, each as soon as the caller says its gradients are
// final, so the update of the top layers overlaps backward through the lower ones (DESIGN: "when the last
// micro-batch's grads of a sub-group are final, its optimizer update may start now").
// Only valid without clipping and without loss scaling: both need the global norm, known only after the whole
// backward. Without the norm pass there is no up-front overflow check; a non-finite gradient makes the update
// throw (gradients of a sub-group already written back cannot be undone), which is why loss scaling refuses it.
public sealed partial class PartitionedOptimizer
{
    /// <summary>
    /// One AdamW step at <see cref="LearningRate"/> with no clipping and no unscaling, sub-groups in descending
    /// order; each waits for <paramref name="waitUntilFinal"/> (which the training step completes as backward
    /// passes the sub-group's first element). Returns the step number. The gradient norm is not computed here.
    /// </summary>
    public async Task<long> StepInReverseAsync(Func<SubGroup, Task> waitUntilFinal)
    {
        if (Options.AdamW.MaxGradNorm > 0)
            throw new InvalidOperationException("An overlapped step cannot clip: clipping needs the global norm before any update.");
        StepNumber++;
        AdamWStepScalars scalars = AdamWStepScalars.For(Options.AdamW, StepNumber, LearningRate, 1.0);
        SubGroup[] order = SubGroups.Reverse().ToArray();
        if (_pipeline is null)
        {
            foreach (SubGroup group in order)
            {
                await waitUntilFinal(group).ConfigureAwait(false);
                SwapSlot slot = _residentSlots[group.Index]!;
                slot.MoveTo(SwapBufferState.Filling, group.Index);
                Update(group, slot.Lease, scalars);
                slot.MoveTo(SwapBufferState.Ready, group.Index);
            }
        }
        else
        {
            await _pipeline.UpdateInOrderAsync(order, async group =>
            {
                await waitUntilFinal(group).ConfigureAwait(false);
                return true;
            }, (group, lease) => Update(group, lease, scalars)).ConfigureAwait(false);
        }
        Options.WeightWriteBack?.Flush();
        Counters.Steps++;
        return StepNumber;
    }

    /// <summary>
    /// A normal step (norm, overflow check, unscale and clip, as <see cref="StepAsync"/>) whose first optimizer-state
    /// reads start now, before the gradients are final: call it when the last backward starts and complete
    /// <paramref name="backwardDone"/> with the loss scale once every gradient is in place (null: the backward
    /// failed; nothing is updated or counted). A skipped step frees the prefetched buffers without writing them.
    /// Results are bit-identical to <see cref="StepAsync"/> (sub-groups are independent; only their order differs).
    /// </summary>
    public async Task<StepResult?> StepWithPrefetchAsync(Task<double?> backwardDone)
    {
        StepResult? result = null;
        bool abandoned = false;
        AdamWStepScalars scalars = default;
        async Task<bool> DecideAsync(SubGroup _)
        {
            if (result is not null || abandoned)
                return result is { Skipped: false };
            double? lossScale = await backwardDone.ConfigureAwait(false);
            if (lossScale is not double scale)
            {
                abandoned = true;
                return false;
            }
            double sumOfSquares = GradientNorm.SumOfSquares(_parameters.Select(p => (p.Gradient, p.GradientType, p.ElementCount)).ToList(), Options.MaxDegreeOfParallelism);
            double norm = Math.Sqrt(sumOfSquares) / scale;
            if (!double.IsFinite(norm))
            {
                Counters.SkippedSteps++;
                result = new StepResult(true, norm, 1.0, StepNumber);
                return false;
            }
            // reference: torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.
            double maxNorm = Options.AdamW.MaxGradNorm;
            double clip = maxNorm > 0 ? Math.Min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
            StepNumber++;
            scalars = AdamWStepScalars.For(Options.AdamW, StepNumber, LearningRate, clip / scale);
            result = new StepResult(false, norm, clip, StepNumber);
            return true;
        }
        SubGroup[] order = SubGroups.Reverse().ToArray();
        bool updated;
        if (_pipeline is null)
        {
            updated = order.Length > 0 && await DecideAsync(order[0]).ConfigureAwait(false);
            if (updated)
            {
                foreach (SubGroup group in order)
                {
                    SwapSlot slot = _residentSlots[group.Index]!;
                    slot.MoveTo(SwapBufferState.Filling, group.Index);
                    Update(group, slot.Lease, scalars);
                    slot.MoveTo(SwapBufferState.Ready, group.Index);
                }
            }
        }
        else
        {
            updated = await _pipeline.UpdateInOrderAsync(order, DecideAsync, (group, lease) => Update(group, lease, scalars)).ConfigureAwait(false);
        }
        Options.WeightWriteBack?.Flush();
        if (updated)
            Counters.Steps++;
        return result;
    }
}
