using System.Runtime.InteropServices;

namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// fsync(2) of a file or a directory by path. .NET can flush a FileStream it wrote (Flush(true)) but cannot open a
/// directory, and a rename is durable only once the directory holding it is synced.
/// reference: the classic write-temp, fsync, rename, fsync-parent sequence (e.g. LevelDB's env_posix.cc SyncDirIfManifest).
/// No-op on Windows, where NTFS metadata is journaled and directories cannot be opened this way.
/// </summary>
internal static partial class FileSync
{
    private const int ReadOnly = 0; // O_RDONLY: enough for fsync, and valid for directories.

    public static void Sync(string path)
    {
        if (OperatingSystem.IsWindows())
            return;
        int fd = Open(path, ReadOnly);
        if (fd < 0)
            throw new IOException($"open {path} for fsync failed (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"fsync {path} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            Close(fd);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
