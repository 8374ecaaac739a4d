using FineTune.Trainer.Checkpoints;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Where `finetune export` reads a model from: a checkpoint folder (verified against its manifest, then its model/
/// subfolder), a run's output_dir (its newest checkpoint, verified), or anything else as an HF folder unchanged.
/// </summary>
public static class CheckpointExportSource
{
    public static string Resolve(string source)
    {
        if (File.Exists(Path.Combine(source, CheckpointManifest.FileName)))
            return CheckpointStore.Open(source).FilePath(RunCheckpoints.ModelFolder);
        string checkpoints = Path.Combine(source, "checkpoints");
        if (!File.Exists(Path.Combine(source, "config.json")) && Directory.Exists(checkpoints))
        {
            var store = new CheckpointStore(checkpoints);
            CheckpointInfo latest = store.LoadLatest()
                ?? throw new UserErrorException($"{source} is a run folder without a complete checkpoint; export a checkpoint once the run has saved one.");
            return latest.FilePath(RunCheckpoints.ModelFolder);
        }
        return source;
    }
}
