using FineTune.IO.Native;

namespace FineTune.IO;

/// <summary>
/// A failed file operation, naming the operation, the file, the offset, the byte count and the errno with libc's
/// text, e.g. "read of 1048576 bytes at offset 4096 in /nvme/swap0 failed: EIO (Input/output error)".
/// Errno 0 means the kernel reported no error but the operation could not finish (end of file during a read).
/// </summary>
public class DirectIoException : IOException
{
    public DirectIoException(string operation, string path, long fileOffset, long byteCount, int errno, string? detail = null)
        : base(BuildMessage(operation, path, fileOffset, byteCount, errno, detail))
    {
        Operation = operation;
        Path = path;
        FileOffset = fileOffset;
        ByteCount = byteCount;
        Errno = errno;
        HResult = errno;
    }

    protected DirectIoException(string message, string operation, string path, long fileOffset, long byteCount, int errno)
        : base(message)
    {
        Operation = operation;
        Path = path;
        FileOffset = fileOffset;
        ByteCount = byteCount;
        Errno = errno;
        HResult = errno;
    }

    /// <summary>"read", "write", "open", "fallocate", "fsync".</summary>
    public string Operation { get; }

    public string Path { get; }

    public long FileOffset { get; }

    public long ByteCount { get; }

    /// <summary>The Linux errno (x86_64 numbering); 0 when the failure was not an errno (end of file).</summary>
    public int Errno { get; }

    private static string BuildMessage(string operation, string path, long fileOffset, long byteCount, int errno, string? detail)
    {
        string cause = errno != 0 ? LibC.Describe(errno) : detail ?? "unknown cause";
        if (errno != 0 && detail is not null)
            cause += $"; {detail}";
        return $"{operation} of {byteCount} bytes at offset {fileOffset} in {path} failed: {cause}.";
    }
}
