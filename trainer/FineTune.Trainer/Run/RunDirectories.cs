using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Plots;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.TensorBoard;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The folders of a run: output_dir (created), offload.nvme_dir (created when its parent exists, so the default
/// "&lt;output_dir&gt;/swap" works on a first run; a missing parent is a user error), checkpoint.dir when it is
/// elsewhere, what a fresh start refuses, and the empty folders a failed start takes back.
/// Rule: a run never deletes another run's files. A fresh run (resume null) refuses an output_dir that holds
/// checkpoints, metrics.jsonl lines or TensorBoard events; resume=latest with no checkpoint yet continues the same
/// run's logs (metrics.jsonl is appended, the last line of a step wins; TensorBoard gets a new event file).
/// </summary>
public static class RunDirectories
{
    /// <summary>Creates the run's folders; returns those it created (deepest last), for <see cref="RemoveIfEmpty"/>.</summary>
    public static IReadOnlyList<string> Prepare(Recipe recipe)
    {
        var created = new List<string>();
        CreateOrRefuse(recipe.OutputDir, "output_dir", created);
        if (recipe.Offload.NvmeDir is string nvme && !Directory.Exists(nvme))
        {
            string? parent = Path.GetDirectoryName(Path.GetFullPath(nvme));
            if (parent is null || !Directory.Exists(parent))
                throw new UserErrorException($"offload.nvme_dir {nvme} does not exist and neither does its parent folder; create it on the NVMe drive or point nvme_dir at an existing folder.");
            CreateOrRefuse(nvme, "offload.nvme_dir", created);
        }
        if (!IsInside(recipe.Checkpoint.Dir, recipe.OutputDir))
            CreateOrRefuse(recipe.Checkpoint.Dir, "checkpoint.dir", created);
        return created;
    }

    /// <summary>The launcher's folder in output_dir for every rank's log (rank-R.log), under `--nproc N`.</summary>
    public const string LogsFolderName = "logs";

    /// <summary>
    /// Refuses a run whose files in output_dir are symbolic links: FineTune appends to metrics.jsonl and eval.jsonl,
    /// writes loss.png, the run lock, the launcher's logs/rank-R.log and into tensorboard/ and checkpoints/, and
    /// deletes old checkpoints; through a link any of that would land outside the run folder. Called before anything
    /// is written: by the run itself, and by the launcher before it creates logs/. (To keep checkpoints on another
    /// disk, set checkpoint.dir there.)
    /// </summary>
    public static void RefuseLinks(Recipe recipe) => RefuseLinks(recipe.OutputDir);

    /// <inheritdoc cref="RefuseLinks(Recipe)"/>
    public static void RefuseLinks(string outputDirectory)
    {
        foreach (string name in new[] { RunMetricsLog.FileName, RunMetricsLog.EvalFileName, LossPlot.FileName, "tensorboard", "checkpoints", LogsFolderName, RunFolderLock.FileName })
            RefuseLink(Path.Combine(outputDirectory, name), name == "checkpoints" ? ", and set checkpoint.dir to keep checkpoints on another disk" : "");
        string logs = Path.Combine(outputDirectory, LogsFolderName);
        if (Directory.Exists(logs))
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(logs))
                RefuseLink(entry);
        }
    }

    /// <summary>Throws a user error when <paramref name="path"/> is a symbolic link (dangling or not) that FineTune would write through.</summary>
    public static void RefuseLink(string path, string advice = "")
    {
        // lstat-based: LinkTarget is the link's own text, set for a dangling link too (Exists follows the link)
        if (new FileInfo(path).LinkTarget is string target)
            throw new UserErrorException($"{path} is a symbolic link (to {target}), and FineTune never writes or deletes through links out of output_dir; remove the link{advice}.");
    }

    /// <summary>The folders a run locks: output_dir, and checkpoint.dir when it lies outside it.</summary>
    public static IEnumerable<(string Folder, string What)> LockedFolders(Recipe recipe)
    {
        yield return (recipe.OutputDir, "output_dir");
        if (!IsInside(recipe.Checkpoint.Dir, recipe.OutputDir))
            yield return (recipe.Checkpoint.Dir, "checkpoint.dir");
    }

    /// <summary>
    /// Before a run that starts a new timeline in output_dir (step 0, or a branch from another run's checkpoint):
    /// refuses an output_dir holding checkpoints, and, unless <paramref name="continuesThisRun"/> (resume=latest
    /// that found no checkpoint yet), metrics or TensorBoard events; the sentence names what is there.
    /// </summary>
    public static void StartFresh(Recipe recipe, bool continuesThisRun)
    {
        IReadOnlyList<CheckpointInfo> existing = new CheckpointStore(recipe.Checkpoint.Dir).ListAll();
        if (existing.Count > 0)
            throw new UserErrorException($"{recipe.Checkpoint.Dir} already holds checkpoints (latest {existing[^1].DirectoryPath}); continue that run with resume=true, or choose a new output_dir.");
        if (continuesThisRun)
            return;
        var found = new List<string>();
        string metrics = Path.Combine(recipe.OutputDir, RunMetricsLog.FileName);
        if (File.Exists(metrics) && new FileInfo(metrics).Length > 0)
            found.Add(RunMetricsLog.FileName);
        string tensorBoard = TrainingMetricsLogger.DirectoryFor(recipe.OutputDir);
        if (Directory.Exists(tensorBoard) && Directory.EnumerateFiles(tensorBoard, "events.out.tfevents.*").Any())
            found.Add("tensorboard/ event files");
        if (found.Count > 0)
            throw new UserErrorException($"output_dir {recipe.OutputDir} holds an earlier run's {string.Join(" and ", found)}, which a new run would mix with its own; choose a new output_dir, or continue that run with resume=true.");
    }

    /// <summary>After a start that failed: removes the folders <see cref="Prepare"/> created, deepest first, when nothing but the run lock is in them.</summary>
    public static void RemoveIfEmpty(IReadOnlyList<string> created)
    {
        foreach (string folder in created.Reverse())
        {
            try
            {
                string lockFile = Path.Combine(folder, RunFolderLock.FileName);
                string[] entries = Directory.GetFileSystemEntries(folder);
                if (entries.All(e => e == lockFile))
                    Directory.Delete(folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // best effort: the user error being reported matters more than a leftover empty folder
            }
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or lies inside it (lexically, after resolving to absolute).</summary>
    public static bool IsInside(string path, string folder)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        return full == root || full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

    private static void CreateOrRefuse(string folder, string field, List<string> created)
    {
        string full = Path.GetFullPath(folder);
        var missing = new Stack<string>();
        for (string? f = full; f is not null && !Directory.Exists(f); f = Path.GetDirectoryName(f))
            missing.Push(f);
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"{field} {folder} cannot be created ({e.Message.TrimEnd('.')}); choose a writable folder.", e);
        }
        created.AddRange(missing);
    }
}
