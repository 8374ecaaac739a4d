using System.Globalization;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Disk space for checkpoints, checked before anything is written instead of discovered through ENOSPC halfway
/// through a save. A checkpoint holds the weights and the fp32 optimizer state (<see cref="RunPlan.CheckpointByteCount"/>);
/// a new one is written completely before the oldest is pruned, so at the peak keep_last + 1 of them exist.
/// At start the free space of checkpoint.dir must hold what this run will add at that peak (the swap files too
/// when nvme_dir is on the same file system); before each save, it must hold one more checkpoint.
/// A refusal is one sentence with the estimate; the previous checkpoints are never touched.
/// </summary>
public static class RunSpaceCheck
{
    /// <summary>Slack for manifests, configs, file-system metadata: 1% and at least 1 MiB.</summary>
    private static long WithSlack(long byteCount) => byteCount + Math.Max(1L << 20, byteCount / 100);

    public static void CheckCheckpoints(Recipe recipe, RunPlan plan, CheckpointStore store)
    {
        long? free = FreeBytes(recipe.Checkpoint.Dir, out string? mount);
        if (free is null)
            return;
        int existing = store.List().Count;
        int added = Math.Max(1, recipe.Checkpoint.KeepLast + 1 - existing);
        long need = WithSlack(added * plan.CheckpointByteCount);
        string swap = "";
        if (recipe.Offload.NvmeDir is string nvme && plan.NvmeResidentByteCount > 0 && FreeBytes(nvme, out string? nvmeMount) is not null && nvmeMount == mount)
        {
            need += plan.NvmeResidentByteCount;
            swap = $" plus {Gib(plan.NvmeResidentByteCount)} GiB of swap files in offload.nvme_dir on the same disk";
        }
        if (need > free)
            throw new UserErrorException(
                $"checkpoint.dir {recipe.Checkpoint.Dir} has {Gib(free.Value)} GiB free but this run needs about {Gib(need)} GiB there ({added} checkpoint(s) of {Gib(plan.CheckpointByteCount)} GiB at the peak, checkpoint.keep_last {recipe.Checkpoint.KeepLast} plus the one being written{swap}); free space, lower checkpoint.keep_last, or point checkpoint.dir at a larger disk.");
    }

    /// <summary>Before a save: the next checkpoint (as large as the last one, or the plan's estimate) must fit.</summary>
    public static void CheckNextCheckpoint(Recipe recipe, long predictedByteCount, string? lastCheckpoint)
    {
        long? free = FreeBytes(recipe.Checkpoint.Dir, out _);
        long need = WithSlack(lastCheckpoint is not null && Directory.Exists(lastCheckpoint) ? FolderByteCount(lastCheckpoint) : predictedByteCount);
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

    private static long FolderByteCount(string folder) =>
        new DirectoryInfo(folder).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString(byteCount < (1L << 30) ? "0.###" : "0.0#", CultureInfo.InvariantCulture);
}
