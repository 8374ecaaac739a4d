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
