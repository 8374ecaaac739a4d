using System.Runtime.InteropServices;
using System.Text;
using FineTune.IO.Native;

namespace FineTune.IO;

/// <summary>
/// Reading a file the user named, safely: it must be a regular file (a FIFO or a device blocks or never ends, so it
/// is refused before it is opened, by stat(2)), and it must be no larger than a stated bound, checked before
/// anything is read; each refusal is one sentence naming the file. The bounds are far above any real file of that
/// kind (a Llama 3 tokenizer.json is 9 MB, a config.json a few KB).
/// </summary>
public static unsafe class InputFile
{
    public const long ConfigLimitByteCount = 16L << 20;
    public const long TokenizerLimitByteCount = 512L << 20;
    public const long RecipeLimitByteCount = 4L << 20;

    /// <summary>
    /// A data or text file read whole into memory: 1 GiB, near the largest .NET string (2^30 characters), so a larger
    /// file could not be decoded anyway; a bigger data set is split into files of one folder.
    /// </summary>
    public const long DataLimitByteCount = 1L << 30;

    private const int StatBufferByteCount = 256; // struct stat is 144 bytes on x86_64
    private const int ModeOffset = 24;           // st_dev 8, st_ino 8, st_nlink 8, then st_mode (x86_64 kernel layout)
    private const long SysStat = 4;

    /// <summary>What a path is, by stat(2) (symlinks followed).</summary>
    public static string? KindOf(string path)
    {
        byte[] name = Encoding.UTF8.GetBytes(Path.GetFullPath(path) + "\0");
        byte* buffer = stackalloc byte[StatBufferByteCount];
        fixed (byte* pathBytes = name)
        {
            if (LibC.Syscall(SysStat, (long)pathBytes, (long)buffer, 0, 0, 0, 0) != 0)
                return Marshal.GetLastPInvokeError() == LibC.ENOENT ? null : "unreadable";
        }
        uint mode = *(uint*)(buffer + ModeOffset) & 0xF000;
        return mode switch
        {
            0x8000 => "file",
            0x4000 => "folder",
            0x1000 => "FIFO (named pipe)",
            0x2000 => "character device",
            0x6000 => "block device",
            0xC000 => "socket",
            _ => "special file",
        };
    }

    /// <summary>Throws a user error unless <paramref name="path"/> is an existing regular file; <paramref name="what"/> names its role ("config.json", "dataset.path").</summary>
    public static void RequireRegular(string path, string what)
    {
        if (path.Length == 0)
            throw new UserErrorException($"{what} is an empty path; give a file.");
        if (path.Contains('\0'))
            throw new UserErrorException($"{what} contains a NUL character; give a plain file path.");
        string? kind = KindOf(path);
        if (kind is null)
            throw new UserErrorException($"{what} {path} does not exist; give an existing file.");
        if (kind != "file")
            throw new UserErrorException($"{what} {path} is a {kind}, not a regular file; give a regular file{(kind == "folder" ? " inside it" : "")}.");
    }

    /// <summary>
    /// The bytes of a regular file of at most <paramref name="maxByteCount"/> bytes; <paramref name="fix"/> ends the
    /// sentence for a larger file (by default: check that it is the right file).
    /// </summary>
    public static byte[] ReadAllBytes(string path, long maxByteCount, string what, string? fix = null)
    {
        RequireRegular(path, what);
        long length = new FileInfo(path).Length;
        if (length > maxByteCount)
            throw new UserErrorException($"{what} {path} has {length:N0} bytes, more than the {maxByteCount:N0} a {what} can plausibly need; {fix ?? "check that it is the right file"}.");
        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            if (bytes.LongLength > maxByteCount)
                throw new UserErrorException($"{what} {path} grew past {maxByteCount:N0} bytes while it was read; check that it is the right file.");
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot read {what} {path} ({e.Message.TrimEnd('.')}).", e);
        }
    }

    /// <summary>A regular file's text (UTF-8 as File.ReadAllText reads it: a leading byte order mark dropped, invalid bytes as U+FFFD), bounded as <see cref="ReadAllBytes"/>.</summary>
    public static string ReadAllText(string path, long maxByteCount, string what, string? fix = null)
    {
        byte[] bytes = ReadAllBytes(path, maxByteCount, what, fix);
        return Encoding.UTF8.GetString(WithoutByteOrderMark(bytes).Span);
    }

    /// <summary><paramref name="bytes"/> without a leading UTF-8 byte order mark (EF BB BF), which JSON parsers refuse and File.ReadAllText drops.</summary>
    public static ReadOnlyMemory<byte> WithoutByteOrderMark(ReadOnlyMemory<byte> bytes) =>
        bytes.Span.StartsWith(Encoding.UTF8.Preamble) ? bytes[Encoding.UTF8.Preamble.Length..] : bytes;
}
