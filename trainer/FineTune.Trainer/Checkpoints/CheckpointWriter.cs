using System.Text;

namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// Writes one checkpoint atomically: files go into <c>step_&lt;N&gt;.tmp-&lt;pid&gt;/</c>, <see cref="Commit"/>
/// records each file's size and CRC-32C in manifest.json, fsyncs files and folders, renames the folder to
/// <c>step_&lt;N&gt;</c>, fsyncs the parent and prunes to the newest keep_last. A crash at any point leaves
/// either the previous checkpoints untouched plus a temp folder (ignored and later removed by
/// <see cref="CheckpointStore"/>), or the new complete one. Disposing without Commit deletes the temp folder.
/// The temp folder holds an exclusively locked ".lock" file while the writer lives, so a store can tell a live
/// writer from a stale folder even when a restarted container reuses the same pid; it is made and locked as
/// <c>.step_&lt;N&gt;.tmp-&lt;pid&gt;.new</c> and renamed, so no store ever sees it unlocked (a crash in that instant
/// leaves the hidden folder, which no store deletes: it cannot tell it from one being made).
/// What goes into a checkpoint (weights, optimizer state) is the caller's business; this type only frames it.
/// </summary>
public sealed class CheckpointWriter : IDisposable
{
    public const string RecipeFileName = "recipe.yaml";
    internal const string LockFileName = ".lock";

    private readonly Dictionary<string, CheckpointFileEntry?> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _verifiedBy = new(StringComparer.Ordinal);
    private readonly string _checkpointsDirectory;
    private FileStream? _lock;
    private int _openStreamCount;
    private bool _finished;

    internal CheckpointWriter(string checkpointsDirectory, long step)
    {
        if (step < 0)
            throw new ArgumentOutOfRangeException(nameof(step), "a checkpoint step cannot be negative.");
        _checkpointsDirectory = checkpointsDirectory;
        Step = step;
        TempDirectory = CheckpointStore.TempDirectoryOf(checkpointsDirectory, step, Environment.ProcessId);
        try
        {
            Directory.CreateDirectory(checkpointsDirectory);
            if (Directory.Exists(TempDirectory))
                Directory.Delete(TempDirectory, recursive: true);
            // The temp folder appears under its name with its lock already held: made and locked under a name no
            // store cleans up, then renamed (the flock stays with the open file). Created in place, a store listing
            // the folder between mkdir and the lock (another rank, a test polling for checkpoints) took it for a
            // dead writer's and deleted it under this one.
            string staging = Path.Combine(checkpointsDirectory, "." + Path.GetFileName(TempDirectory) + ".new");
            if (Directory.Exists(staging))
                Directory.Delete(staging, recursive: true);
            Directory.CreateDirectory(staging);
            _lock = new FileStream(Path.Combine(staging, LockFileName), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            Directory.Move(staging, TempDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _lock?.Dispose();
            throw new UserErrorException($"Cannot create checkpoint folder {TempDirectory} ({e.Message.TrimEnd('.')}); check checkpoint.dir and free space.", e);
        }
    }

    public long Step { get; }

    /// <summary>The folder files are written into until <see cref="Commit"/>.</summary>
    public string TempDirectory { get; }

    /// <summary>A new file; its CRC and size are computed as it is written, and it is fsynced when the stream is disposed.</summary>
    public Stream CreateFile(string relativePath)
    {
        var (normalized, full) = Reserve(relativePath);
        _openStreamCount++;
        return new CrcFileStream(full, normalized, entry =>
        {
            _files[entry.RelativePath] = entry;
            _openStreamCount--;
        });
    }

    /// <summary>
    /// The full path at which a caller writes a file by other means (a safetensors writer, a copy of swap extents).
    /// Commit reads it back for its CRC-32C and fsyncs it.
    /// </summary>
    public string PathFor(string relativePath) => Reserve(relativePath).FullPath;

    /// <summary>
    /// As <see cref="PathFor"/>, for a file whose parts are CRC'd in <paramref name="verifiedBy"/> (another file of this
    /// checkpoint): Commit records its length and fsyncs it but does not read it back (it may be tens of GB, or a link
    /// to a swap file whose CRCs were kept as it was written).
    /// </summary>
    public string PathForVerifiedBy(string relativePath, string verifiedBy)
    {
        var (normalized, full) = Reserve(relativePath);
        _verifiedBy[normalized] = verifiedBy.Replace('\\', '/');
        return full;
    }

    public void WriteAllBytes(string relativePath, ReadOnlySpan<byte> bytes)
    {
        using Stream stream = CreateFile(relativePath);
        stream.Write(bytes);
    }

    public void WriteText(string relativePath, string text) => WriteAllBytes(relativePath, Encoding.UTF8.GetBytes(text));

    public void WriteTrainerState(TrainerState state) => WriteText(TrainerState.FileName, state.ToJson());

    /// <summary>The resolved recipe, complete with defaults and with absolute paths (a resume may run from another directory), as recipe.yaml.</summary>
    public void WriteRecipe(Recipes.Recipe recipe) => WriteText(RecipeFileName, recipe.ToYamlWithAbsolutePaths());

    /// <summary>Finishes the checkpoint, makes it durable, keeps the newest <paramref name="keepLast"/>; returns its folder.</summary>
    public string Commit(int keepLast)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (keepLast < 1)
            throw new ArgumentOutOfRangeException(nameof(keepLast), "keep at least the checkpoint being written.");
        if (_openStreamCount != 0)
            throw new InvalidOperationException($"{_openStreamCount} checkpoint file stream(s) are still open; dispose them before Commit.");
        var entries = new List<CheckpointFileEntry>();
        foreach (var (relativePath, entry) in _files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            string full = FullPath(relativePath);
            if (!File.Exists(full))
                throw new InvalidOperationException($"checkpoint file {relativePath} was reserved but never written.");
            if (entry is null && _verifiedBy.TryGetValue(relativePath, out string? verifiedBy))
            {
                if (!_files.ContainsKey(verifiedBy))
                    throw new InvalidOperationException($"checkpoint file {relativePath} is to be verified by {verifiedBy}, which is not in the checkpoint.");
                entries.Add(new CheckpointFileEntry(relativePath, new FileInfo(full).Length, 0, verifiedBy));
                FileSync.Sync(full);
            }
            else if (entry is null)
            {
                entries.Add(CheckpointStore.Measure(full, relativePath));
                FileSync.Sync(full);
            }
            else if (new FileInfo(full).Length != entry.ByteCount)
                throw new InvalidOperationException($"checkpoint file {relativePath} changed after its stream was closed.");
            else
                entries.Add(entry);
        }
        var manifest = new CheckpointManifest { Step = Step, Files = entries };
        string manifestPath = Path.Combine(TempDirectory, CheckpointManifest.FileName);
        using (var stream = new FileStream(manifestPath, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            stream.Write(manifest.Serialize());
            stream.Flush(flushToDisk: true);
        }
        foreach (string folder in Directory.GetDirectories(TempDirectory, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
            FileSync.Sync(folder);
        FileSync.Sync(TempDirectory);

        string final = Path.Combine(_checkpointsDirectory, CheckpointStore.DirectoryName(Step));
        if (Directory.Exists(final))
            CheckpointStore.DeleteThroughTemp(final); // the same step saved again (after a resume): the new one wins
        // The lock is held across the rename (an open file survives it), so no store ever sees an unlocked temp folder
        // that is about to become a checkpoint; the lock file is not in the manifest, and is removed afterwards.
        Directory.Move(TempDirectory, final);
        FileSync.Sync(_checkpointsDirectory);
        _finished = true;
        _lock!.Dispose();
        _lock = null;
        File.Delete(Path.Combine(final, LockFileName));
        FileSync.Sync(final);
        new CheckpointStore(_checkpointsDirectory).Prune(keepLast);
        return final;
    }

    public void Dispose()
    {
        _lock?.Dispose();
        _lock = null;
        if (!_finished && Directory.Exists(TempDirectory))
            Directory.Delete(TempDirectory, recursive: true);
        _finished = true;
    }

    private (string Normalized, string FullPath) Reserve(string relativePath)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        string normalized = relativePath.Replace('\\', '/');
        if (normalized.Length == 0 || Path.IsPathRooted(normalized) || normalized.Split('/').Any(part => part is "" or "." or "..")
            || normalized == CheckpointManifest.FileName || normalized == LockFileName)
            throw new ArgumentException($"'{relativePath}' is not a valid checkpoint file name (relative, no '..', not {CheckpointManifest.FileName}).");
        if (!_files.TryAdd(normalized, null))
            throw new ArgumentException($"checkpoint file {normalized} was already added.");
        string full = FullPath(normalized);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        return (normalized, full);
    }

    private string FullPath(string relativePath) => Path.Combine(TempDirectory, relativePath.Replace('/', Path.DirectorySeparatorChar));
}
