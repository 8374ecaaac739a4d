using System.Runtime.InteropServices;
using FineTune.IO.Native;
using Microsoft.Win32.SafeHandles;

namespace FineTune.IO;

/// <summary>
/// A file opened with open(2) O_DIRECT|O_CLOEXEC, its descriptor owned by a <see cref="SafeFileHandle"/>.
/// .NET's FileOptions cannot ask for O_DIRECT (a cast flag is silently dropped), hence the direct open(2).
///
/// When the file system refuses O_DIRECT at open (EINVAL, e.g. older tmpfs or some FUSE mounts) the file is reopened
/// buffered, <see cref="IsDirect"/> is false, and one warning is printed per process. I/O goes through an
/// <see cref="IIoEngine"/>; this type only opens, sizes, preallocates and syncs.
/// </summary>
public sealed class DirectFile : IDisposable
{
    /// <summary>The alignment O_DIRECT requires for offsets, lengths and buffer addresses.</summary>
    public const int SectorByteCountValue = 4096;

    private DirectFile(string path, SafeFileHandle handle, bool isDirect, DirectFileAccess access)
    {
        Path = path;
        Handle = handle;
        IsDirect = isDirect;
        Access = access;
    }

    public string Path { get; }

    public SafeFileHandle Handle { get; }

    /// <summary>True when the descriptor really has O_DIRECT (false after the buffered fallback).</summary>
    public bool IsDirect { get; }

    public DirectFileAccess Access { get; }

    /// <summary>Every request's offset, length and buffer address must be a multiple of this (4096).</summary>
    public int SectorByteCount => SectorByteCountValue;

    /// <summary>The file's current length in bytes.</summary>
    public long Length => RandomAccess.GetLength(Handle);

    /// <summary>Opens <paramref name="path"/> for direct I/O (creating it when <paramref name="create"/>).</summary>
    public static DirectFile Open(string path, DirectFileAccess access, bool create) => Open(path, access, create, allowDirect: true);

    /// <summary>As <see cref="Open(string, DirectFileAccess, bool)"/>; allowDirect: false forces the buffered mode (tests).</summary>
    internal static DirectFile Open(string path, DirectFileAccess access, bool create, bool allowDirect)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = System.IO.Path.GetFullPath(path);
        int flags = LibC.O_CLOEXEC | access switch
        {
            DirectFileAccess.Read => LibC.O_RDONLY,
            DirectFileAccess.Write => LibC.O_WRONLY,
            _ => LibC.O_RDWR,
        };
        if (create)
            flags |= LibC.O_CREAT;
        const int mode = 0x1A4; // 0644

        if (allowDirect)
        {
            int fd = LibC.Open(fullPath, flags | LibC.O_DIRECT, mode);
            if (fd >= 0)
                return new DirectFile(fullPath, new SafeFileHandle(fd, ownsHandle: true), isDirect: true, access);
            int errno = Marshal.GetLastPInvokeError();
            if (errno != LibC.EINVAL)
                throw OpenFailed(fullPath, errno);
            IoLog.WarnOnce("odirect-refused",
                $"the file system holding {fullPath} refuses O_DIRECT; using buffered I/O (the page cache will hold swapped data and bandwidth figures include caching).");
        }

        int bufferedFd = LibC.Open(fullPath, flags, mode);
        if (bufferedFd < 0)
            throw OpenFailed(fullPath, Marshal.GetLastPInvokeError());
        return new DirectFile(fullPath, new SafeFileHandle(bufferedFd, ownsHandle: true), isDirect: false, access);
    }

    /// <summary>
    /// Reserves disk blocks for [0, <paramref name="byteCount"/>) with fallocate(2) so later writes cannot hit ENOSPC
    /// and extents are contiguous; extends the file's length when shorter. ENOSPC becomes <see cref="DiskFullException"/>.
    /// File systems without fallocate fall back to ftruncate (sparse, no reservation) with one warning.
    /// </summary>
    public void Preallocate(long byteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(byteCount);
        int fd = Descriptor;
        int result;
        int errno;
        do
        {
            result = LibC.FAllocate(fd, 0, 0, byteCount);
            errno = result < 0 ? Marshal.GetLastPInvokeError() : 0;
        } while (result < 0 && errno == LibC.EINTR);
        if (result == 0)
            return;
        if (errno == LibC.ENOSPC)
            throw new DiskFullException("fallocate", Path, 0, byteCount, DiskFullException.TryGetAvailableBytes(Path));
        if (errno == LibC.EOPNOTSUPP)
        {
            IoLog.WarnOnce("fallocate-unsupported", $"the file system holding {Path} does not support fallocate; space is not reserved in advance.");
            if (Length < byteCount && LibC.FTruncate(fd, byteCount) != 0)
                throw new DirectIoException("ftruncate", Path, 0, byteCount, Marshal.GetLastPInvokeError());
            return;
        }
        throw new DirectIoException("fallocate", Path, 0, byteCount, errno);
    }

    /// <summary>fsync(2): data and metadata reach stable storage before this returns.</summary>
    public void Fsync()
    {
        if (LibC.FSync(Descriptor) != 0)
            throw new DirectIoException("fsync", Path, 0, 0, Marshal.GetLastPInvokeError());
    }

    /// <summary>The raw descriptor; valid while the handle is open (engines hold a handle reference per request).</summary>
    internal int Descriptor
    {
        get
        {
            ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
            return (int)Handle.DangerousGetHandle();
        }
    }

    public void Dispose() => Handle.Dispose();

    private static Exception OpenFailed(string path, int errno) =>
        errno == LibC.ENOSPC
            ? new DiskFullException("open", path, 0, 0, DiskFullException.TryGetAvailableBytes(path))
            : new DirectIoException("open", path, 0, 0, errno);
}
