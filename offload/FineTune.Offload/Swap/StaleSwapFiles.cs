using FineTune.IO;

namespace FineTune.Offload.Swap;

/// <summary>
/// Swap files outlive a killed run (SIGKILL skips Dispose), and each one eats into nvme_gb. Every live swap file
/// carries an flock on its own descriptor (taken by <see cref="Claim"/> right after it is created), which the kernel
/// drops when its process dies; so a finetune-*.swap file nobody holds belongs to a dead run and is deleted by the
/// next file a <see cref="Storage.NvmeDevice"/> creates in that folder (a resume reclaims its own). Creation and cleanup lock the
/// folder itself (flock on its descriptor, nothing left in it), so a cleanup never sees a file between its open and its flock.
/// Only regular files are touched: a symlink named like a swap file is left alone, never followed.
/// </summary>
public static class StaleSwapFiles
{
    public const string Pattern = "finetune-*.swap";

    /// <summary>Deletes the unheld swap files in <paramref name="directory"/>; returns how many and their bytes.</summary>
    public static (int Count, long ByteCount) Remove(string directory)
    {
        using FileLock folder = LockFolder(directory);
        int count = 0;
        long bytes = 0;
        foreach (FileInfo file in Unheld(directory))
        {
            long length = file.Length;
            file.Delete();
            count++;
            bytes += length;
        }
        return (count, bytes);
    }

    /// <summary>Bytes that <see cref="Remove"/> would free (for free-space checks before a run, which must not delete).</summary>
    public static long ReclaimableByteCount(string directory) =>
        Directory.Exists(directory) ? Unheld(directory).Sum(f => f.Length) : 0;

    /// <summary>Marks a just-created swap file as live (its flock, held until the descriptor closes); call under <see cref="LockFolder"/>.</summary>
    public static void Claim(DirectFile file)
    {
        if (!FileLock.TryLock(file.Handle))
            throw new InvalidOperationException($"swap file {file.Path} was locked by another process right after it was created.");
    }

    /// <summary>The folder's lock (an flock on the directory itself), held while a swap file is created and claimed or while stale ones are removed.</summary>
    public static FileLock LockFolder(string directory) => FileLock.LockDirectory(directory);

    private static IEnumerable<FileInfo> Unheld(string directory) =>
        new DirectoryInfo(directory).EnumerateFiles(Pattern)
            .Where(f => f.LinkTarget is null && (f.Attributes & FileAttributes.ReparsePoint) == 0)
            .Where(f => !FileLock.IsHeld(f.FullName))
            .ToList();
}
