using FineTune.IO;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The exclusive lock of a run folder, held by `run`, `resume` and `export` for as long as they read or write it:
/// flock on &lt;folder&gt;/.finetune.lock (see <see cref="FileLock"/>). Two runs into one output_dir, a resume of
/// a run that is still going, or an export of a run being trained would otherwise overwrite each other's
/// checkpoints and interleave metrics.jsonl. The second comer is refused with one sentence naming the holder's
/// pid; a lock left by a killed process is released by the kernel and never blocks. The lock file stays in the
/// folder (deleting it would let a third comer lock a fresh inode while the second still holds the old one).
/// </summary>
public sealed class RunFolderLock : IDisposable
{
    public const string FileName = ".finetune.lock";
    private readonly List<FileLock> _locks;

    private RunFolderLock(List<FileLock> locks) => _locks = locks;

    /// <summary>
    /// Locks each existing folder of <paramref name="folders"/> (duplicates and nested checkpoint folders once);
    /// <paramref name="what"/> names the folder's role in the refusal ("output_dir", "the run folder").
    /// </summary>
    public static RunFolderLock Acquire(IEnumerable<(string Folder, string What)> folders)
    {
        var locks = new List<FileLock>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var (folder, what) in folders)
            {
                string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
                if (!Directory.Exists(full) || !seen.Add(full))
                    continue;
                string path = Path.Combine(full, FileName);
                FileLock? taken = FileLock.TryAcquire(path, out int? holder);
                if (taken is null)
                    throw new UserErrorException(
                        $"{what} {folder} is in use by finetune process {(holder is int pid ? pid.ToString(System.Globalization.CultureInfo.InvariantCulture) : "(pid unknown)")} (it holds {path}); wait for it to finish or stop it, or choose another {what}.");
                locks.Add(taken);
            }
        }
        catch
        {
            foreach (FileLock held in locks)
                held.Dispose();
            throw;
        }
        return new RunFolderLock(locks);
    }

    public static RunFolderLock Acquire(string folder, string what) => Acquire([(folder, what)]);

    public void Dispose()
    {
        foreach (FileLock held in _locks)
            held.Dispose();
        _locks.Clear();
    }
}
