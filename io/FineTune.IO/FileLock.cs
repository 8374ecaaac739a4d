using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using FineTune.IO.Native;
using Microsoft.Win32.SafeHandles;

namespace FineTune.IO;

/// <summary>
/// An exclusive advisory lock: flock(2) LOCK_EX on a file, held while this object lives. The kernel drops it
/// when the process dies (SIGKILL included), so a lock file left by a killed process never blocks: the next
/// comer takes it and overwrites the pid inside. The holder writes its pid into the file so a second comer can
/// say who holds it. flock belongs to the open file description, so two acquisitions in one process also
/// exclude each other (in-process tests see the same behaviour as two processes).
/// The lock file is opened with O_NOFOLLOW: a symlink planted at its path is refused, never followed.
/// </summary>
public sealed class FileLock : IDisposable
{
    private const int Mode = 0x1A4; // 0644
    private readonly SafeFileHandle _handle;

    private FileLock(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    public string Path { get; }

    /// <summary>
    /// Takes the lock on <paramref name="path"/> (created when missing) without waiting. Null when another open
    /// file holds it; <paramref name="holderPid"/> is then the pid written by the holder, when readable.
    /// </summary>
    public static unsafe FileLock? TryAcquire(string path, out int? holderPid)
    {
        holderPid = null;
        SafeFileHandle handle = OpenNoFollow(path, LibC.O_RDWR | LibC.O_CREAT);
        int fd = (int)handle.DangerousGetHandle();
        if (LibC.FLock(fd, LibC.LOCK_EX | LibC.LOCK_NB) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            try
            {
                if (errno != LibC.EAGAIN)
                    throw new DirectIoException("flock", path, 0, 0, errno);
                holderPid = ReadPid(fd);
                // the holder writes its pid just after it takes the lock: a comer in between reads an empty file
                for (int retry = 0; holderPid is null && retry < 20; retry++)
                {
                    Thread.Sleep(5);
                    holderPid = ReadPid(fd);
                }
                return null;
            }
            finally
            {
                handle.Dispose();
            }
        }
        byte[] pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        LibC.FTruncate(fd, 0);
        fixed (byte* bytes = pid)
            LibC.PWrite(fd, bytes, (nuint)pid.Length, 0);
        return new FileLock(path, handle);
    }

    /// <summary>
    /// Takes an exclusive lock on a file this process already opened, for as long as the descriptor stays open
    /// (no pid is written: the file is data). False when another open file holds it.
    /// </summary>
    public static bool TryLock(SafeFileHandle handle)
    {
        if (LibC.FLock((int)handle.DangerousGetHandle(), LibC.LOCK_EX | LibC.LOCK_NB) == 0)
            return true;
        int errno = Marshal.GetLastPInvokeError();
        return errno == LibC.EAGAIN ? false : throw new DirectIoException("flock", "(open file)", 0, 0, errno);
    }

    /// <summary>
    /// Waits for and takes an exclusive lock on a directory itself (flock on its descriptor): nothing is left in
    /// the folder, which is what short critical sections over a shared folder want.
    /// </summary>
    public static FileLock LockDirectory(string directory)
    {
        SafeFileHandle handle = OpenNoFollow(directory, LibC.O_RDONLY | LibC.O_DIRECTORY);
        while (LibC.FLock((int)handle.DangerousGetHandle(), LibC.LOCK_EX) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != LibC.EINTR)
            {
                handle.Dispose();
                throw new DirectIoException("flock", directory, 0, 0, errno);
            }
        }
        return new FileLock(directory, handle);
    }

    /// <summary>Whether a live open file holds the lock on <paramref name="path"/> (an existing regular file; symlinks are not followed).</summary>
    public static bool IsHeld(string path)
    {
        using SafeFileHandle handle = OpenNoFollow(path, LibC.O_RDONLY);
        // Taking it ourselves is the only race-free test; the lock goes with the descriptor when it closes.
        if (LibC.FLock((int)handle.DangerousGetHandle(), LibC.LOCK_EX | LibC.LOCK_NB) == 0)
            return false;
        int errno = Marshal.GetLastPInvokeError();
        return errno == LibC.EAGAIN ? true : throw new DirectIoException("flock", path, 0, 0, errno);
    }

    public void Dispose() => _handle.Dispose();

    private static SafeFileHandle OpenNoFollow(string path, int flags)
    {
        int fd = LibC.Open(path, flags | LibC.O_CLOEXEC | LibC.O_NOFOLLOW, Mode);
        if (fd >= 0)
            return new SafeFileHandle(fd, ownsHandle: true);
        int errno = Marshal.GetLastPInvokeError();
        if (errno == LibC.ELOOP)
            throw new UserErrorException($"{path} is a symbolic link; FineTune does not follow links for its lock files; remove the link.");
        if (errno is LibC.EACCES or LibC.EPERM)
            throw new UserErrorException($"Cannot open the lock file {path} (permission denied); choose a folder you can write to.");
        if (errno == LibC.ENOSPC)
            throw new DiskFullException("open", path, 0, 0, DiskFullException.TryGetAvailableBytes(path));
        throw new DirectIoException("open", path, 0, 0, errno);
    }

    private static unsafe int? ReadPid(int fd)
    {
        byte* buffer = stackalloc byte[32];
        long read = LibC.PRead(fd, buffer, 32, 0);
        if (read <= 0)
            return null;
        string text = Encoding.ASCII.GetString(buffer, (int)read).Trim();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : null;
    }
}
