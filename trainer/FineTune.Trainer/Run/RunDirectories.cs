using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.TensorBoard;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The folders of a run: output_dir (created), offload.nvme_dir (created when its parent exists, so the default
/// "&lt;output_dir&gt;/swap" works on a first run; a missing parent is a user error), and what a fresh start clears.
/// </summary>
public static class RunDirectories
{
    public static void Prepare(Recipe recipe)
    {
        CreateOrRefuse(recipe.OutputDir, "output_dir");
        if (recipe.Offload.NvmeDir is string nvme && !Directory.Exists(nvme))
        {
            string? parent = Path.GetDirectoryName(Path.GetFullPath(nvme));
            if (parent is null || !Directory.Exists(parent))
                throw new UserErrorException($"offload.nvme_dir {nvme} does not exist and neither does its parent folder; create it on the NVMe drive or point nvme_dir at an existing folder.");
            CreateOrRefuse(nvme, "offload.nvme_dir");
        }
    }

    /// <summary>
    /// Before a run that does not resume: refuses an output_dir that already holds checkpoints (they would mix with
    /// the new run's), and removes the losses and TensorBoard files of an earlier attempt that never checkpointed.
    /// </summary>
    public static void StartFresh(Recipe recipe)
    {
        IReadOnlyList<CheckpointInfo> existing = new CheckpointStore(recipe.Checkpoint.Dir).List();
        if (existing.Count > 0 && recipe.Resume is null)
            throw new UserErrorException($"{recipe.Checkpoint.Dir} already holds checkpoints (latest {existing[^1].DirectoryPath}); continue that run with resume=true, or choose a new output_dir.");
        File.Delete(Path.Combine(recipe.OutputDir, RunMetricsLog.FileName));
        string tensorBoard = TrainingMetricsLogger.DirectoryFor(recipe.OutputDir);
        if (Directory.Exists(tensorBoard))
            Directory.Delete(tensorBoard, recursive: true);
    }

    private static void CreateOrRefuse(string folder, string field)
    {
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"{field} {folder} cannot be created ({e.Message.TrimEnd('.')}); choose a writable folder.", e);
        }
    }
}
