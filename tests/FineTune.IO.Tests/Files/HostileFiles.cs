using System.Diagnostics;
using Xunit;

namespace FineTune.Tests;

/// <summary>
/// Files a reader must refuse before it reads them (issue 21): a FIFO where a file is expected (opening it would
/// block until a writer comes), and a file past a size limit (sparse: it takes no disk). Shared by the IO, Trainer
/// and Cli tests (linked into each).
/// </summary>
internal static class HostileFiles
{
    private static readonly TimeSpan s_patience = TimeSpan.FromSeconds(20);

    /// <summary>Creates a named pipe at <paramref name="path"/> (replacing a file there).</summary>
    public static string Fifo(string path)
    {
        File.Delete(path);
        using Process mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    /// <summary>Creates (or replaces) a sparse file of <paramref name="byteCount"/> zero bytes at <paramref name="path"/>.</summary>
    public static string Oversized(string path, long byteCount)
    {
        File.Delete(path); // a FIFO there would block the open for writing
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.SetLength(byteCount);
        return path;
    }

    /// <summary>
    /// Runs <paramref name="read"/>, which must throw a <typeparamref name="T"/> (or a subclass) within 20 s (a reader that opened a
    /// FIFO would block forever: the test fails instead of hanging), and returns its message.
    /// </summary>
    public static string Refusal<T>(Action read) where T : Exception
    {
        var attempt = Task.Run(() => Assert.ThrowsAny<T>(read).Message);
        Assert.True(attempt.Wait(s_patience), $"the read did not return within {s_patience.TotalSeconds} s (it opened the FIFO?)");
        return attempt.Result;
    }

    /// <inheritdoc cref="Refusal{T}(Action)"/>
    public static string Refusal(Action read) => Refusal<UserErrorException>(read);
}
