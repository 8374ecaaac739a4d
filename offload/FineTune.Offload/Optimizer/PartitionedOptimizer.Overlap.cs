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
            await _pipeline.UpdateInOrderAsync(order, waitUntilFinal, (group, lease) => Update(group, lease, scalars)).ConfigureAwait(false);
        }
        Counters.Steps++;
        return StepNumber;
    }
}
