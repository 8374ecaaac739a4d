using System.Globalization;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Disk space for checkpoints, checked before anything is written instead of discovered through ENOSPC halfway
/// through a save. A checkpoint holds the exported weights and the fp32 optimizer states. States on NVMe are a hard
/// link to the swap file when checkpoint.dir is on the same file system (nothing is copied; the swap writes its next
/// changes to fresh extents, so a checkpoint's states take their own disk only once training goes on after it: never
/// for the run's last one); otherwise they are copied. A new checkpoint is written completely before the oldest is
/// pruned, so at the peak keep_last + 1 of them exist. At start the free space of checkpoint.dir must hold what this
/// run will add at that peak (the swap files too when nvme_dir is on the same file system); before each save, it must
/// hold one more checkpoint. A refusal is one sentence with the estimate; the previous checkpoints are never touched.
/// </summary>
public static class RunSpaceCheck
{
    /// <summary>Slack for manifests, configs, file-system metadata: 1% and at least 1 MiB.</summary>
    private static long WithSlack(long byteCount) => byteCount + Math.Max(1L << 20, byteCount / 100);

    /// <summary>The disk a recipe's checkpoints take at the peak, as <see cref="CheckCheckpoints"/> checks it and `finetune plan` prints it.</summary>
    /// <param name="Written">Checkpoints the run writes (every_steps, every_minutes at the plan's step time, and the last).</param>
    /// <param name="Added">Checkpoint folders this run adds at the peak (keep_last + 1 at most, less those already there).</param>
    /// <param name="Linked">The optimizer states go in as hard links to the NVMe swap file.</param>
    /// <param name="StateCopies">Checkpoints at the peak whose states take disk of their own.</param>
    /// <param name="SwapByteCount">The swap files, counted when nvme_dir is on checkpoint.dir's file system.</param>
    public sealed record Space(int Written, int Added, bool Linked, int StateCopies, long WeightByteCount, long StateByteCount, long SwapByteCount)
    {
        public long NeedByteCount => WithSlack(Added * WeightByteCount + StateCopies * StateByteCount) + SwapByteCount;
    }

    public static Space Predict(Recipe recipe, RunPlan plan, int existing, long? totalSteps) =>
        Predict(recipe, plan.WeightByteCount, plan.OptimizerStateByteCount, plan.NvmeResidentByteCount,
            plan.OptimizerTier == FineTune.Offload.Optimizer.StateTier.Nvme, plan.StepSeconds, existing, totalSteps);

    /// <summary>The same prediction from a plan's figures (a LoRA run's: the adapters' bytes and their states' instead of the model's).</summary>
    public static Space Predict(Recipe recipe, long weightByteCount, long stateByteCount, long nvmeResidentByteCount, bool statesOnNvme,
        double stepSeconds, int existing, long? totalSteps)
    {
        FreeBytes(recipe.Checkpoint.Dir, out string? mount);
        bool sameDisk = recipe.Offload.NvmeDir is string nvme && FreeBytes(nvme, out string? nvmeMount) is not null && nvmeMount == mount;
        bool linked = sameDisk && statesOnNvme;
        int written = 1;
        if (totalSteps is long total)
        {
            if (recipe.Checkpoint.EverySteps is int every)
                written += (int)Math.Min(int.MaxValue / 2, (total - 1) / every);
            if (recipe.Checkpoint.EveryMinutes is double minutes)
                written += (int)Math.Min(int.MaxValue / 2, stepSeconds * total / 60 / minutes);
        }
        else if (recipe.Checkpoint.EverySteps is not null || recipe.Checkpoint.EveryMinutes is not null)
        {
            written = int.MaxValue / 2; // steps unknown: assume checkpoints during the run
        }
        int keep = recipe.Checkpoint.KeepLast;
        int added = Math.Max(1, Math.Min(written, keep + 1 - existing));
        // linked: every kept checkpoint but the newest one owns its states once training has gone on after it
        int copies = linked ? Math.Min(written - 1, keep) : added;
        return new Space(written, added, linked, copies, weightByteCount, stateByteCount, sameDisk ? nvmeResidentByteCount : 0);
    }

    public static void CheckCheckpoints(Recipe recipe, RunPlan plan, CheckpointStore store, long? totalSteps = null) =>
        CheckCheckpoints(recipe, Predict(recipe, plan, store.List().Count, totalSteps));

    /// <summary>Refuses, with one sentence, a predicted <paramref name="space"/> the free space of checkpoint.dir cannot hold.</summary>
    public static void CheckCheckpoints(Recipe recipe, Space space)
    {
        long? free = FreeBytes(recipe.Checkpoint.Dir, out _);
        if (free is null)
            return;
        if (space.NeedByteCount <= free)
            return;
        string states = space.Linked
            ? $"the optimizer states linked to the swap file, {space.StateCopies} of them with {Gib(space.StateByteCount)} GiB of their own once training goes on"
            : $"{Gib(space.StateByteCount)} GiB of optimizer states copied into each";
        string swap = space.SwapByteCount > 0 ? $", plus {Gib(space.SwapByteCount)} GiB of swap files in offload.nvme_dir on the same disk" : "";
        throw new UserErrorException(
            $"checkpoint.dir {recipe.Checkpoint.Dir} has {Gib(free.Value)} GiB free but this run needs about {Gib(space.NeedByteCount)} GiB there ({space.Added} checkpoint(s) at the peak of the {Written(space)} it writes with checkpoint.keep_last {recipe.Checkpoint.KeepLast}: {Gib(space.WeightByteCount)} GiB of weights each, {states}{swap}); free space, lower checkpoint.keep_last or checkpoint.every_steps, or point checkpoint.dir at a larger disk.");
    }

    private static string Written(Space space) => space.Written >= int.MaxValue / 2 ? "many" : space.Written.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Before a save: the next checkpoint must fit: its weights, and its optimizer states unless they go in as a link
    /// to the swap file (the swap's fresh extents after it are the plan's, checked at start).
    /// </summary>
    public static void CheckNextCheckpoint(Recipe recipe, Space space, string? lastCheckpoint)
    {
        long? free = FreeBytes(recipe.Checkpoint.Dir, out _);
        long need = WithSlack(space.WeightByteCount + (space.Linked ? 0 : space.StateByteCount));
        if (free is long f && need > f)
            throw new UserErrorException(
                $"checkpoint.dir {recipe.Checkpoint.Dir} has {Gib(f)} GiB free, less than the {Gib(need)} GiB of the next checkpoint, so the run stops here without writing it{(lastCheckpoint is null ? "" : $" ({lastCheckpoint} stays usable: free space, then finetune resume)")}; free space or point checkpoint.dir at a larger disk.");
    }

    /// <summary>Free bytes for this user on the file system of <paramref name="folder"/> (or its nearest existing parent), and that file system's mount point.</summary>
    internal static long? FreeBytes(string folder, out string? mountPoint)
    {
        mountPoint = null;
        try
        {
            string? existing = Path.GetFullPath(folder);
            while (existing is not null && !Directory.Exists(existing))
                existing = Path.GetDirectoryName(existing);
            if (existing is null)
                return null;
            var drive = new DriveInfo(existing);
            mountPoint = drive.RootDirectory.FullName;
            return drive.AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString(byteCount < (1L << 30) ? "0.###" : "0.0#", CultureInfo.InvariantCulture);
}
