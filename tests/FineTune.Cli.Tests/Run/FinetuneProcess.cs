using System.Diagnostics;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// Starts the real `finetune` as a child process (dotnet finetune.dll, the copy next to this test assembly, else
/// the one under trainer/FineTune.Cli/bin), so tests can kill it with SIGKILL. Output is captured asynchronously.
/// </summary>
internal sealed class FinetuneProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    public FinetuneProcess(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(DllPath());
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        _process = new Process { StartInfo = start };
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>Sends a signal by name: TERM (what `kill PID` and container runtimes send) or INT (Ctrl-C).</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start("kill", [$"-{name}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>SIGKILL (Process.Kill sends SIGKILL on Linux), then waits for the process to be gone.</summary>
    public void KillHard()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }
        _process.WaitForExit();
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            KillHard();
            throw new TimeoutException($"finetune did not finish within {timeout}; output:\n{Output}");
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Runs to completion and returns (exit code, stdout + stderr).</summary>
    public static (int ExitCode, string Output) Run(TimeSpan timeout, params string[] args)
    {
        using var process = new FinetuneProcess(args);
        int code = process.WaitForExit(timeout);
        return (code, process.Output);
    }

    public void Dispose() => _process.Dispose();

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    private static string DllPath()
    {
        string local = Path.Combine(AppContext.BaseDirectory, "finetune.dll");
        if (File.Exists(local))
            return local;
        string built = Path.Combine(CliRunner.RepositoryRoot(), "trainer", "FineTune.Cli", "bin", "Release", "net10.0", "finetune.dll");
        return File.Exists(built) ? built : throw new FileNotFoundException("finetune.dll not found; build trainer/FineTune.Cli first", built);
    }
}
