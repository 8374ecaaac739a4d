using System.Diagnostics;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Rings;

namespace FineTune.Offload.Optimizer;

// The three ways to run one AdamW step over the sub-groups; all give the same bits (sub-groups are independent and
// each element's update is the same fused pass; only the order of sub-groups differs).
public sealed partial class PartitionedOptimizer
{
    /// <summary>
    /// One AdamW step at <see cref="LearningRate"/>: (1) one streaming fp64 pass over all gradients gives the global
    /// norm and the overflow check, before any sub-group changes, so a NaN anywhere skips the whole step; (2) the fused
    /// AdamW pass per sub-group with the unscale-and-clip factor folded in. Gradients are divided by
    /// <paramref name="lossScale"/> and clipped to AdamWOptions.MaxGradNorm. A NaN or infinite gradient skips the step.
    /// </summary>
    public StepResult Step(double lossScale = 1.0) => Task.Run(() => StepAsync(lossScale)).GetAwaiter().GetResult();

    public async Task<StepResult> StepAsync(double lossScale = 1.0)
    {
        StepDecision decision = Decide(lossScale);
        if (!decision.Result.Skipped)
            await ApplyAsync(decision).ConfigureAwait(false);
        return decision.Result;
    }

    /// <summary>
    /// Carries out a decided step over every sub-group in ascending order; <paramref name="groupDone"/> hears of each
    /// sub-group once its update is done, with the task of its weight write (completed when the weights are written in
    /// place). The gradients must stay as they were at <see cref="Decide"/> until this completes.
    /// </summary>
    public async Task ApplyAsync(StepDecision decision, Action<SubGroup, Task>? groupDone = null)
    {
        if (decision.Result.Skipped)
            throw new ArgumentException("a skipped step has nothing to apply.", nameof(decision));
        await UpdateInOrderAsync(SubGroups, _ => Task.FromResult(true), () => decision.Scalars, groupDone).ConfigureAwait(false);
    }

    /// <summary>
    /// One AdamW step at <see cref="LearningRate"/> with no clipping and no unscaling, sub-groups in descending
    /// order; each waits for <paramref name="waitUntilFinal"/> (which the training step completes as backward
    /// passes the sub-group's first element). Returns the step number. The gradient norm is not computed here.
    /// Without the norm pass there is no up-front overflow check: a non-finite gradient makes the update throw
    /// (sub-groups already written cannot be undone), which is why clipping and loss scaling refuse this step.
    /// </summary>
    public async Task<long> StepInReverseAsync(Func<SubGroup, Task> waitUntilFinal)
    {
        if (Options.AdamW.MaxGradNorm > 0)
            throw new InvalidOperationException("An overlapped step cannot clip: clipping needs the global norm before any update.");
        StepNumber++;
        AdamWStepScalars scalars = AdamWStepScalars.For(Options.AdamW, StepNumber, LearningRate, 1.0);
        await UpdateInOrderAsync(SubGroups.Reverse().ToArray(), async group =>
        {
            await waitUntilFinal(group).ConfigureAwait(false);
            return true;
        }, scalars).ConfigureAwait(false);
        return StepNumber;
    }

    /// <summary>
    /// <see cref="StepInReverseAsync"/> in two passes, for a drive that idles under forward: the sub-groups below
    /// <paramref name="split"/> (a sub-group's first element) in descending order, each once backward has passed it,
    /// after which <paramref name="belowDone"/> completes (their weights written); then the sub-groups from
    /// <paramref name="split"/> up in ascending order — the top layers, whose gradients were final first and whose
    /// weights the next forward needs last — each reported to <paramref name="groupDone"/> with its weight write. Every
    /// sub-group gets the same step's constants, so the bits are <see cref="StepInReverseAsync"/>'s.
    /// </summary>
    public async Task<long> StepInReverseThenAboveAsync(long split, Func<SubGroup, Task> waitUntilFinal, TaskCompletionSource belowDone, Action<SubGroup, Task> groupDone)
    {
        if (Options.AdamW.MaxGradNorm > 0)
            throw new InvalidOperationException("An overlapped step cannot clip: clipping needs the global norm before any update.");
        StepNumber++;
        AdamWStepScalars scalars = AdamWStepScalars.For(Options.AdamW, StepNumber, LearningRate, 1.0);
        try
        {
            await UpdateInOrderAsync(SubGroups.Where(g => g.FirstElement < split).Reverse().ToArray(), async group =>
            {
                await waitUntilFinal(group).ConfigureAwait(false);
                return true;
            }, scalars).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            belowDone.TrySetException(error);
            throw;
        }
        belowDone.TrySetResult();
        await UpdateInOrderAsync(SubGroups.Where(g => g.FirstElement >= split).ToArray(), _ => Task.FromResult(true), () => scalars, groupDone).ConfigureAwait(false);
        return StepNumber;
    }

    /// <summary>
    /// A normal step (norm, overflow check, unscale and clip, as <see cref="StepAsync"/>) whose first optimizer-state
    /// reads start now, before the gradients are final: call it when the last backward starts and complete
    /// <paramref name="backwardDone"/> with the loss scale once every gradient is in place (null: the backward
    /// failed; nothing is updated or counted). A skipped step frees the prefetched buffers without writing them.
    /// </summary>
    public async Task<StepResult?> StepWithPrefetchAsync(Task<double?> backwardDone)
    {
        StepResult? result = null;
        AdamWStepScalars scalars = default;
        bool abandoned = false;
        async Task<bool> DecideOnceAsync()
        {
            if (result is not null || abandoned)
                return result is { Skipped: false };
            if (await backwardDone.ConfigureAwait(false) is not double scale)
            {
                abandoned = true;
                return false;
            }
            StepDecision decided = Decide(scale);
            (result, scalars) = (decided.Result, decided.Scalars);
            return !decided.Result.Skipped;
        }
        await UpdateInOrderAsync(SubGroups.Reverse().ToArray(), _ => DecideOnceAsync(), () => scalars).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// The norm pass and the step's constants at <see cref="LearningRate"/>; a non-finite norm is a skipped step (counted,
    /// nothing changes). A decision that is not skipped advances <see cref="StepNumber"/>: apply it, once.
    /// </summary>
    public StepDecision Decide(double lossScale = 1.0)
    {
        long start = Stopwatch.GetTimestamp();
        double norm = Math.Sqrt(Gradients.SumOfSquares(Options.MaxDegreeOfParallelism)) / lossScale;
        Counters.AddComputeSince(start);
        if (!double.IsFinite(norm))
        {
            SkippedStepCount++;
            return new StepDecision(new StepResult(true, norm, 1.0, StepNumber), default);
        }
        // reference: torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.
        double maxNorm = Options.AdamW.MaxGradNorm;
        double clip = maxNorm > 0 ? Math.Min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
        StepNumber++;
        return new StepDecision(new StepResult(false, norm, clip, StepNumber), AdamWStepScalars.For(Options.AdamW, StepNumber, LearningRate, clip / lossScale));
    }

    private Task<bool> UpdateInOrderAsync(IReadOnlyList<SubGroup> order, Func<SubGroup, Task<bool>> waitUntilReady, AdamWStepScalars scalars) =>
        UpdateInOrderAsync(order, waitUntilReady, () => scalars, null);

    /// <summary>Every sub-group of <paramref name="order"/> updated once its readiness says so; the weights flushed at the end.</summary>
    private async Task<bool> UpdateInOrderAsync(IReadOnlyList<SubGroup> order, Func<SubGroup, Task<bool>> waitUntilReady, Func<AdamWStepScalars> scalars,
        Action<SubGroup, Task>? groupDone = null)
    {
        bool updated;
        if (_pipeline is not null)
        {
            updated = await _pipeline.UpdateInOrderAsync(order, waitUntilReady, (group, lease) => Update(group, lease, scalars(), groupDone)).ConfigureAwait(false);
        }
        else
        {
            updated = true;
            foreach (SubGroup group in order)
            {
                if (!await waitUntilReady(group).ConfigureAwait(false))
                {
                    updated = false;
                    break;
                }
                Update(group, _resident[group.Index]!, scalars(), groupDone);
            }
        }
        Options.WeightWriteBack?.Flush();
        return updated;
    }

    private unsafe void Update(SubGroup group, HostLease states, in AdamWStepScalars scalars, Action<SubGroup, Task>? groupDone = null)
    {
        long start = Stopwatch.GetTimestamp();
        byte* basePointer = states.Pointer;
        long n = group.ElementCount;
        bool residual = group.Encoding == StateEncoding.Bf16Residual;
        (long mOffset, long vOffset) = group.Encoding.MomentOffsets(n);
        long masterOffset = group.Encoding.MasterOffset(n);
        var segments = new AdamWSegment[group.Segments.Count];
        IWeightWriteBack? writeBack = Options.WeightWriteBack;
        nint weights = writeBack?.Rent(group) ?? 0;
        // residual masters need the weights before the step: carried with the gradients, else read back into the buffer the new ones go to
        nint[] carried = residual && writeBack is not null ? group.Segments.Select(s => Gradients.PreviousWeights(group, s)).ToArray() : new nint[segments.Length];
        if (residual && writeBack is not null && carried.Contains(0))
            writeBack.ReadCurrent(group);
        for (int i = 0; i < segments.Length; i++)
        {
            SubGroupSegment s = group.Segments[i];
            HostParameter p = _parameters[s.Parameter];
            (nint gradient, ElementType gradientType) = Gradients.Gradient(group, s);
            nint weight = writeBack is null ? p.Weight + (nint)(s.ParameterOffset * p.WeightType.ByteCount()) : weights + (nint)(s.GroupOffset * p.WeightType.ByteCount());
            segments[i] = new AdamWSegment(
                residual ? 0 : (nint)(basePointer + 4 * s.GroupOffset),
                (nint)(basePointer + mOffset + 4 * s.GroupOffset),
                (nint)(basePointer + vOffset + 4 * s.GroupOffset),
                gradient, gradientType, weight, p.WeightType, s.ElementCount)
            {
                Residual = residual ? (nint)(basePointer + masterOffset + 2 * s.GroupOffset) : 0,
                PreviousWeight = residual ? (carried[i] != 0 ? carried[i] : weight) : 0,
            };
        }
        if (_deviceAdamW is not null && Options.DeviceSubGroups![group.Index])
            _deviceAdamW.Update(scalars, segments);
        else if (!CpuAdamW.Update(scalars, segments, Options.MaxDegreeOfParallelism))
            throw new InvalidOperationException($"Sub-group {group.Index} saw a non-finite gradient that the norm pass did not: gradients changed during the step.");
        Task written = writeBack?.Commit(group) ?? Task.CompletedTask;
        Gradients.Release(group);
        Counters.AddComputeSince(start);
        groupDone?.Invoke(group, written);
    }
}
