using FineTune.Trainer.Checkpoints;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Where `finetune export` and `finetune eval` read a model from: a checkpoint folder (verified against its
/// manifest, then its model/ subfolder), a run's output_dir (its newest checkpoint, verified), or anything else as
/// an HF folder unchanged. A source that does not exist, or is a file, is refused here with its own sentence.
/// </summary>
public static class CheckpointExportSource
{
    public static string Resolve(string source, string what = "export")
    {
        if (source.Trim().Length == 0)
            throw new UserErrorException($"{what} was given an empty path; give an HF model folder, a checkpoint folder (step_N) or a run's output_dir.");
        if (File.Exists(source))
            throw new UserErrorException($"{what}: {source} is a file; give an HF model folder, a checkpoint folder (step_N) or a run's output_dir.");
        if (!Directory.Exists(source))
            throw new UserErrorException($"{what}: {source} does not exist; give an HF model folder, a checkpoint folder (step_N) or a run's output_dir.");
        if (File.Exists(Path.Combine(source, CheckpointManifest.FileName)))
            return CheckpointStore.Open(source).FilePath(RunCheckpoints.ModelFolder);
        string checkpoints = Path.Combine(source, "checkpoints");
        if (!File.Exists(Path.Combine(source, "config.json")) && Directory.Exists(checkpoints))
        {
            var store = new CheckpointStore(checkpoints);
            CheckpointInfo latest = store.LoadLatest()
                ?? throw new UserErrorException($"{source} is a run folder without a complete checkpoint; {what} a checkpoint once the run has saved one.");
            return latest.FilePath(RunCheckpoints.ModelFolder);
        }
        if (!File.Exists(Path.Combine(source, "config.json")))
            throw new UserErrorException($"{what}: {source} is neither an HF model folder (no config.json) nor a checkpoint (no manifest.json) nor a run folder (no checkpoints/); point it at one of those.");
        return source;
    }

    /// <summary>The run folder <paramref name="source"/> belongs to (itself, or the folder above checkpoints/step_N), or null for an HF folder.</summary>
    public static string? RunFolderOf(string source)
    {
        if (source.Trim().Length == 0)
            return null;
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(source));
        if (Directory.Exists(Path.Combine(full, "checkpoints")))
            return full;
        string? parent = Path.GetDirectoryName(full);
        return File.Exists(Path.Combine(full, CheckpointManifest.FileName)) && parent is not null && Path.GetFileName(parent) == "checkpoints"
            ? Path.GetDirectoryName(parent)
            : null;
    }
}
