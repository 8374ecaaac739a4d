namespace FineTune.IO;

/// <summary>
/// ENOSPC: the file system could not hold what was asked. Says how many bytes were needed, where, and how many
/// were free when the error was seen, so the user can free space or point the recipe's nvme_dir elsewhere.
/// </summary>
public sealed class DiskFullException : DirectIoException
{
    public DiskFullException(string operation, string path, long fileOffset, long bytesNeeded, long? bytesAvailable)
        : base(BuildMessage(operation, path, fileOffset, bytesNeeded, bytesAvailable), operation, path, fileOffset, bytesNeeded, Native.LibC.ENOSPC)
    {
        BytesNeeded = bytesNeeded;
        BytesAvailable = bytesAvailable;
    }

    /// <summary>The bytes the failed operation needed (the preallocation or write length).</summary>
    public long BytesNeeded { get; }

    /// <summary>Free bytes on the file system when the error was seen, when it could be measured.</summary>
    public long? BytesAvailable { get; }

    /// <summary>
    /// Whether <paramref name="exception"/> (or one it wraps) is a full disk or quota: ours, or a .NET IOException
    /// whose HResult is the errno ENOSPC (28) or EDQUOT (122), as .NET reports them on Linux.
    /// </summary>
    public static bool IsDiskFull(Exception? exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
            if (e is DiskFullException || (e is IOException && e.HResult is Native.LibC.ENOSPC or 122))
                return true;
        return false;
    }

    /// <summary>One sentence for a full disk met while writing: what was being written and what to change.</summary>
    public static string Describe(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
            if (e is DiskFullException full)
                return full.Message;
        string message = exception.Message;
        int quote = message.IndexOf(": '", StringComparison.Ordinal);
        string where = quote >= 0 ? $" writing {message[(quote + 3)..].TrimEnd('\'', '.')}" : "";
        return $"No space left on the disk{where}; free space there, or point output_dir, checkpoint.dir or offload.nvme_dir at a larger disk (complete checkpoints are never touched by a failed write).";
    }

    /// <summary>
    /// Free bytes for unprivileged users on the file system holding <paramref name="path"/> (a file, existing or not,
    /// in an existing directory), or null when it cannot be measured. Lets a planner refuse a run before it starts.
    /// </summary>
    public static long? TryGetAvailableBytes(string path)
    {
        try
        {
            string? directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            return directory is null ? null : new DriveInfo(directory).AvailableFreeSpace;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static string BuildMessage(string operation, string path, long fileOffset, long bytesNeeded, long? bytesAvailable)
    {
        string free = bytesAvailable is long available ? $"{available} bytes are free there" : "free space could not be measured";
        return $"No space left on device (ENOSPC): {operation} needed {bytesNeeded} bytes at offset {fileOffset} in {path}, " +
               $"but {free}; free space or choose another directory.";
    }
}
