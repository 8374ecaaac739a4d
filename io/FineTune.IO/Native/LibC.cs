using System.Runtime.InteropServices;

namespace FineTune.IO.Native;

/// <summary>
/// The libc calls FineTune.IO needs (open with O_DIRECT, pread/pwrite, fallocate, fsync, mmap, syscall for io_uring).
/// Linux x86_64 only: the flag values and syscall numbers below are the x86_64 ones
/// (reference: /usr/include/asm-generic/fcntl.h, arch/x86/entry/syscalls/syscall_64.tbl).
/// Every call sets errno; read it with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe class LibC
{
    private const string Library = "libc";

    // open(2) flags (x86_64 values; O_DIRECT differs on arm64, which we do not support).
    public const int O_RDONLY = 0x0;
    public const int O_WRONLY = 0x1;
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_DIRECT = 0x4000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_DIRECTORY = 0x10000;
    public const int O_CLOEXEC = 0x80000;

    // errno values (asm-generic/errno-base.h, errno.h).
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int EOPNOTSUPP = 95;

    // flock(2) operations.
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;

    // mmap(2).
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_POPULATE = 0x08000;
    public static readonly IntPtr MapFailed = new(-1);

    // syscall numbers (x86_64).
    public const long SYS_io_uring_setup = 425;
    public const long SYS_io_uring_enter = 426;

    [DllImport(Library, EntryPoint = "open", SetLastError = true)]
    public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    public const int MADV_HUGEPAGE = 14;

    [DllImport(Library, EntryPoint = "madvise", SetLastError = true)]
    public static extern unsafe int Madvise(void* address, nuint length, int advice);

    [DllImport(Library, EntryPoint = "link", SetLastError = true)]
    public static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string existingPath, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

    [DllImport(Library, EntryPoint = "pread", SetLastError = true)]
    public static extern long PRead(int fd, byte* buffer, nuint byteCount, long fileOffset);

    [DllImport(Library, EntryPoint = "pwrite", SetLastError = true)]
    public static extern long PWrite(int fd, byte* buffer, nuint byteCount, long fileOffset);

    [DllImport(Library, EntryPoint = "fallocate", SetLastError = true)]
    public static extern int FAllocate(int fd, int mode, long fileOffset, long byteCount);

    [DllImport(Library, EntryPoint = "ftruncate", SetLastError = true)]
    public static extern int FTruncate(int fd, long byteCount);

    [DllImport(Library, EntryPoint = "fsync", SetLastError = true)]
    public static extern int FSync(int fd);

    public const int EFD_CLOEXEC = 0x80000;

    [DllImport(Library, EntryPoint = "eventfd", SetLastError = true)]
    public static extern int EventFd(uint initialValue, int flags);

    [DllImport(Library, EntryPoint = "write", SetLastError = true)]
    public static extern long Write(int fd, byte* buffer, nuint byteCount);

    [DllImport(Library, EntryPoint = "flock", SetLastError = true)]
    public static extern int FLock(int fd, int operation);

    [DllImport(Library, EntryPoint = "close", SetLastError = true)]
    public static extern int Close(int fd);

    [DllImport(Library, EntryPoint = "mmap", SetLastError = true)]
    public static extern IntPtr MMap(IntPtr address, nuint byteCount, int protection, int flags, int fd, long fileOffset);

    [DllImport(Library, EntryPoint = "munmap", SetLastError = true)]
    public static extern int MUnmap(IntPtr address, nuint byteCount);

    public const int CLOCK_THREAD_CPUTIME_ID = 3;

    /// <summary>clock_gettime(2); <paramref name="timespec"/> points at two longs (seconds, nanoseconds).</summary>
    [DllImport(Library, EntryPoint = "clock_gettime", SetLastError = true)]
    public static extern int ClockGetTime(int clock, long* timespec);

    /// <summary>CPU seconds consumed by the calling thread (unaffected by other processes sharing the cores).</summary>
    public static double ThreadCpuSeconds()
    {
        long* timespec = stackalloc long[2];
        ClockGetTime(CLOCK_THREAD_CPUTIME_ID, timespec);
        return timespec[0] + timespec[1] * 1e-9;
    }

    /// <summary>
    /// syscall(2) with every argument passed as a 64-bit integer. glibc declares it variadic; on x86_64 the
    /// integer arguments travel in the same registers either way, and glibc's syscall reads exactly six.
    /// </summary>
    [DllImport(Library, EntryPoint = "syscall", SetLastError = true)]
    public static extern long Syscall(long number, long arg1, long arg2, long arg3, long arg4, long arg5, long arg6);

    /// <summary>"EIO (Input/output error)": the errno's name and libc's text, for exception messages.</summary>
    public static string Describe(int errno)
    {
        string name = errno switch
        {
            EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", EBADF => "EBADF",
            EAGAIN => "EAGAIN", ENOMEM => "ENOMEM", EACCES => "EACCES", EBUSY => "EBUSY", EINVAL => "EINVAL",
            EFBIG => "EFBIG", ENOSPC => "ENOSPC", ENOSYS => "ENOSYS", ELOOP => "ELOOP", EOPNOTSUPP => "EOPNOTSUPP",
            _ => $"errno {errno}",
        };
        return $"{name} ({Marshal.GetPInvokeErrorMessage(errno)})";
    }
}
