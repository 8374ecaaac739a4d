using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

// Added by the training step (train branch), kept apart from the offload helper's SwapPipeline.cs: the same
// read k+1 | update k | write k-1 pipeline over sub-groups in a caller-given order, where the update of each
// sub-group first awaits a readiness task (its gradients becoming final during backward). The read of the next
// sub-group is started before that wait, so optimizer-state prefetch overlaps the rest of backward too.
// A readiness task that returns false abandons the step: buffers already read are freed unchanged (nothing is
// written back), so a skipped step leaves swap exactly as it was.
internal sealed partial class SwapPipeline
{
    public async Task<bool> UpdateInOrderAsync(IReadOnlyList<SubGroup> order, Func<SubGroup, Task<bool>> waitUntilReady, Action<SubGroup, HostLease> update)
    {
        Task<SwapSlot>? next = order.Count > 0 ? await StartReadAsync(order[0]).ConfigureAwait(false) : null;
        for (int k = 0; k < order.Count; k++)
        {
            SubGroup group = order[k];
            long waitStart = Stopwatch.GetTimestamp();
            SwapSlot slot = await next!.ConfigureAwait(false);
            _counters.ReadWaitSeconds += Stopwatch.GetElapsedTime(waitStart).TotalSeconds;
            _counters.BytesRead += _store.ExtentByteCount(group.Index);
            next = k + 1 < order.Count ? await StartReadAsync(order[k + 1]).ConfigureAwait(false) : null;
            if (!await waitUntilReady(group).ConfigureAwait(false))
            {
                slot.MoveTo(SwapBufferState.Free, -1);
                if (next is not null)
                    (await next.ConfigureAwait(false)).MoveTo(SwapBufferState.Free, -1);
                await DrainAsync().ConfigureAwait(false);
                return false;
            }
            slot.MoveTo(SwapBufferState.Filling, group.Index);
            update(group, slot.Lease);
            StartWrite(slot, group.Index);
        }
        await DrainAsync().ConfigureAwait(false);
        return true;
    }
}
