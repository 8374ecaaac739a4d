using System.Globalization;
using System.Text.RegularExpressions;

namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// The checkpoints folder of a run (<c>&lt;output_dir&gt;/checkpoints</c>): lists complete checkpoints, removes
/// stale temp folders left by a crash, verifies a checkpoint against its manifest, finds the latest valid one,
/// starts writers and prunes old checkpoints. A damaged checkpoint is refused with one sentence naming the file
/// and offering the previous checkpoint.
/// </summary>
public sealed partial class CheckpointStore
{
    internal const string TempMarker = ".tmp-";
    private const int ReadChunkByteCount = 1 << 20;
    private const long ManifestLimitByteCount = 64L << 20;

    [GeneratedRegex(@"^step_(\d+)$")]
    private static partial Regex CompleteName();

    [GeneratedRegex(@"^step_\d+\.tmp-")]
    private static partial Regex TempName();

    public CheckpointStore(string checkpointsDirectory) => DirectoryPath = checkpointsDirectory;

    public string DirectoryPath { get; }

    internal static string DirectoryName(long step) => string.Create(CultureInfo.InvariantCulture, $"step_{step}");

    /// <summary>The folder the writer of process <paramref name="writerProcessId"/> fills before it becomes step_N.</summary>
    public static string TempDirectoryOf(string checkpointsDirectory, long step, int writerProcessId) =>
        Path.Combine(checkpointsDirectory, string.Create(CultureInfo.InvariantCulture, $"{DirectoryName(step)}{TempMarker}{writerProcessId}"));

    /// <summary>Starts writing the checkpoint of <paramref name="step"/>.</summary>
    public CheckpointWriter BeginWrite(long step) => new(DirectoryPath, step);

    /// <summary>
    /// Complete checkpoints (a step_N folder holding manifest.json), oldest first. Temp folders are never listed;
    /// those whose writer is gone (its lock file is not held) are deleted.
    /// </summary>
    public IReadOnlyList<CheckpointInfo> List() =>
        ListAll().Where(c => File.Exists(c.FilePath(CheckpointManifest.FileName))).ToList();

    /// <summary>
    /// Every step_N folder, oldest first, complete or not: a step folder without its manifest was damaged after it
    /// was written (a checkpoint is renamed to step_N only once its manifest is durable), so resume reports it
    /// instead of silently falling back past it. Symlinked step folders are listed as what they are named; they
    /// are verified (read) but never deleted through.
    /// </summary>
    public IReadOnlyList<CheckpointInfo> ListAll()
    {
        if (!Directory.Exists(DirectoryPath))
            return [];
        var all = new List<CheckpointInfo>();
        foreach (string folder in Directory.GetDirectories(DirectoryPath))
        {
            string name = Path.GetFileName(folder);
            Match match = CompleteName().Match(name);
            if (match.Success && long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                all.Add(new CheckpointInfo(step, folder));
            else if (TempName().IsMatch(name) && !IsLocked(folder) && !IsSymlink(folder))
                DeleteStaleTemp(folder);
        }
        return all.OrderBy(c => c.Step).ToList();
    }

    /// <summary>Step folders newer than <paramref name="step"/>, complete or not (what a resume from it would overwrite).</summary>
    public IReadOnlyList<CheckpointInfo> Newer(long step) => ListAll().Where(c => c.Step > step).ToList();

    /// <summary>Checks every file against the manifest; throws a user error naming the damaged file and the previous checkpoint.</summary>
    public CheckpointManifest Verify(CheckpointInfo checkpoint)
    {
        string? problem = FindProblem(checkpoint, out CheckpointManifest? manifest);
        if (problem is null)
            return manifest!;
        throw Damaged(checkpoint, problem);
    }

    /// <summary>
    /// Checks the manifest and one file of it (resume reads recipe.yaml before the run verifies everything):
    /// throws the same damage sentence as <see cref="Verify"/> when either is wrong.
    /// </summary>
    public void VerifyFile(CheckpointInfo checkpoint, string relativePath)
    {
        string? problem = FindProblem(checkpoint, out _, only: relativePath);
        if (problem is not null)
            throw Damaged(checkpoint, problem);
    }

    /// <summary>A damage sentence for a file that passed its CRC but cannot be used (a recipe.yaml this release cannot read).</summary>
    public UserErrorException Damaged(CheckpointInfo checkpoint, string problem)
    {
        CheckpointInfo? previous = List().LastOrDefault(c => c.Step < checkpoint.Step);
        string offer = previous is null
            ? "there is no earlier checkpoint, so repair it or start a new run in another output_dir."
            : $"resume from the previous checkpoint with resume={previous.DirectoryPath} --discard-newer (which deletes it), or repair it.";
        return new UserErrorException($"Checkpoint {checkpoint.DirectoryPath} is damaged: {problem}; {offer}");
    }

    /// <summary>The newest checkpoint that passes verification, or null; damaged newer ones are skipped.</summary>
    public CheckpointInfo? FindLatestValid() =>
        List().Reverse().FirstOrDefault(c => FindProblem(c, out _) is null);

    /// <summary>For resume=latest: the newest checkpoint, verified (a damaged newest one is refused, not skipped), or null if none.</summary>
    public CheckpointInfo? LoadLatest()
    {
        CheckpointInfo? latest = ListAll().LastOrDefault();
        if (latest is not null)
            Verify(latest);
        return latest;
    }

    /// <summary>For resume=PATH: that folder as a checkpoint of this store, verified.</summary>
    public static CheckpointInfo Open(string checkpointDirectory)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpointDirectory));
        Match match = CompleteName().Match(Path.GetFileName(full));
        if (!match.Success || !Directory.Exists(full))
            throw new UserErrorException($"{checkpointDirectory} is not a checkpoint folder (expected an existing step_<N> folder); use resume=latest or pick one under <output_dir>/checkpoints.");
        var checkpoint = new CheckpointInfo(long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), full);
        new CheckpointStore(Path.GetDirectoryName(full)!).Verify(checkpoint);
        return checkpoint;
    }

    /// <summary>Deletes all but the newest <paramref name="keepLast"/> complete checkpoints.</summary>
    public void Prune(int keepLast)
    {
        IReadOnlyList<CheckpointInfo> all = List();
        foreach (CheckpointInfo old in all.Take(Math.Max(0, all.Count - keepLast)))
            DeleteThroughTemp(old.DirectoryPath);
        FileSync.Sync(DirectoryPath);
    }

    /// <summary>
    /// Deletes the step folders (complete or damaged) newer than <paramref name="step"/>. Only on the user's word
    /// (--discard-newer): after resuming from an older checkpoint the newer ones belong to an abandoned timeline and
    /// would otherwise be overwritten or picked by resume=latest. A symlinked step folder loses its link only.
    /// Returns how many were deleted.
    /// </summary>
    public int DiscardAfter(long step)
    {
        var newer = Newer(step);
        foreach (CheckpointInfo checkpoint in newer)
            DeleteThroughTemp(checkpoint.DirectoryPath);
        if (newer.Count > 0)
            FileSync.Sync(DirectoryPath);
        return newer.Count;
    }

    /// <summary>
    /// Renames a checkpoint to a temp name before deleting it, so a crash half-way through the delete leaves a
    /// folder that is never mistaken for a complete checkpoint.
    /// </summary>
    internal static void DeleteThroughTemp(string checkpointDirectory)
    {
        if (IsSymlink(checkpointDirectory))
        {
            // never delete through a link into someone else's folder: the link goes, its target stays
            File.Delete(checkpointDirectory);
            return;
        }
        string doomed = $"{checkpointDirectory}{TempMarker}{Environment.ProcessId}-deleting";
        if (Directory.Exists(doomed))
            Directory.Delete(doomed, recursive: true);
        Directory.Move(checkpointDirectory, doomed);
        DeleteStaleTemp(doomed); // a store listing now may be deleting it too
    }

    /// <summary>Byte count and CRC-32C of a file, read in 1 MiB chunks.</summary>
    internal static CheckpointFileEntry Measure(string fullPath, string relativePath)
    {
        using var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        var buffer = new byte[ReadChunkByteCount];
        uint crc = 0;
        long byteCount = 0;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            crc = IO.Crc32C.Append(crc, buffer.AsSpan(0, read));
            byteCount += read;
        }
        return new CheckpointFileEntry(relativePath, byteCount, crc);
    }

    private static string? FindProblem(CheckpointInfo checkpoint, out CheckpointManifest? manifest, string? only = null)
    {
        manifest = null;
        string manifestPath = Path.Combine(checkpoint.DirectoryPath, CheckpointManifest.FileName);
        if (!File.Exists(manifestPath))
            return $"{CheckpointManifest.FileName} is missing";
        if (IO.InputFile.KindOf(manifestPath) != "file" || new FileInfo(manifestPath).Length > ManifestLimitByteCount)
            return $"{CheckpointManifest.FileName} is not a regular file of at most {ManifestLimitByteCount} bytes";
        byte[] manifestBytes;
        try
        {
            // bounded again as it is read: the file may have been swapped or grown since the check
            manifestBytes = IO.InputFile.ReadAllBytes(manifestPath, ManifestLimitByteCount, CheckpointManifest.FileName);
        }
        catch (UserErrorException e)
        {
            return $"{CheckpointManifest.FileName} cannot be read ({e.Message.TrimEnd('.')})";
        }
        manifest = CheckpointManifest.TryParse(manifestBytes, out string? manifestProblem);
        if (manifest is null)
            return $"{CheckpointManifest.FileName} is unreadable: {manifestProblem}";
        if (manifest.Step != checkpoint.Step)
            return $"{CheckpointManifest.FileName} says step {manifest.Step} but the folder is step {checkpoint.Step}";
        if (only is not null && !manifest.Files.Any(f => f.RelativePath == only))
            return $"{CheckpointManifest.FileName} does not list {only}";
        foreach (CheckpointFileEntry entry in manifest.Files.Where(f => only is null || f.RelativePath == only))
        {
            if (entry.RelativePath.Length == 0 || Path.IsPathRooted(entry.RelativePath) || entry.RelativePath.Split('/').Contains(".."))
                return $"{CheckpointManifest.FileName} names an invalid path '{entry.RelativePath}'";
            string path = checkpoint.FilePath(entry.RelativePath);
            if (!File.Exists(path))
                return $"file {entry.RelativePath} is missing";
            if (IO.InputFile.KindOf(path) is string kind && kind != "file")
                return $"file {entry.RelativePath} is a {kind}, not a regular file"; // reading a FIFO for its CRC would never end
            long byteCount = new FileInfo(path).Length;
            if (byteCount != entry.ByteCount)
                return $"file {entry.RelativePath} has {byteCount} bytes but the manifest says {entry.ByteCount}";
            if (entry.VerifiedBy is { } verifiedBy)
            {
                if (!manifest.Files.Any(f => f.RelativePath == verifiedBy && f.VerifiedBy is null))
                    return $"file {entry.RelativePath} is to be verified by {verifiedBy}, which the manifest does not list";
                continue; // its parts' CRCs are checked as the resume reads it
            }
            if (Measure(path, entry.RelativePath).Crc32C != entry.Crc32C)
                return $"file {entry.RelativePath} fails its CRC-32C check (its contents changed after it was written)";
        }
        return null;
    }

    /// <summary>
    /// Removes a dead writer's temp folder, or a checkpoint being deleted through its temp name: an unlocked temp
    /// folder is any store's to remove, so another one may be removing it too, and what it removed first is no
    /// error. Gone already is fine as well: listed while its live writer renamed it to step_N (its lock file then was
    /// not at the old path, which reads as unlocked).
    /// </summary>
    private static void DeleteStaleTemp(string folder)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(folder, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 3 || !Directory.Exists(folder))
            {
                if (!Directory.Exists(folder))
                    return;
            }
        }
    }

    private static bool IsSymlink(string path) => new DirectoryInfo(path).LinkTarget is not null;

    /// <summary>Whether a live writer holds the temp folder's lock file (.NET takes an flock for FileShare.None).</summary>
    private static bool IsLocked(string tempFolder)
    {
        string lockPath = Path.Combine(tempFolder, CheckpointWriter.LockFileName);
        if (!File.Exists(lockPath))
            return false;
        try
        {
            using var probe = new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }
}
