using System.Diagnostics;
using Xunit;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// A tmpfs mounted with size= at a temp folder: a disk that really fills up (ENOSPC), for disk-full tests.
/// Mounting needs root (CAP_SYS_ADMIN); <see cref="MountFactAttribute"/> skips the test, with the reason, where the
/// kernel refuses. Unmounted and removed on Dispose.
/// </summary>
internal sealed class SizeLimitedFolder : IDisposable
{
    public SizeLimitedFolder(int mebibytes)
    {
        Path = Directory.CreateTempSubdirectory("ft-small-disk-").FullName;
        if (Run("mount", "-t", "tmpfs", "-o", $"size={mebibytes}m", "tmpfs", Path) != 0)
            throw new InvalidOperationException($"mount of a {mebibytes} MiB tmpfs at {Path} failed");
    }

    public string Path { get; }

    /// <summary>Writes a filler file until the disk refuses more (ENOSPC); returns the bytes written.</summary>
    public long Fill()
    {
        long written = 0;
        using var stream = new FileStream(System.IO.Path.Combine(Path, "filler"), FileMode.Create, FileAccess.Write, FileShare.None, 1);
        var block = new byte[4096];
        try
        {
            while (true)
            {
                stream.Write(block);
                written += block.Length;
            }
        }
        catch (IOException)
        {
            return written;
        }
    }

    public void Dispose()
    {
        Run("umount", "-l", Path);
        Directory.Delete(Path, recursive: true);
    }

    internal static int Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        process.WaitForExit();
        return process.ExitCode;
    }
}
