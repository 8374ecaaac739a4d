using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FineTune.Cli.Launch;

/// <summary>
/// One rank of a local launch: this same finetune (dotnet finetune.dll) started with the rank's torchrun
/// variables. Its stdout and stderr go line by line to its log file (appended, so a relaunch into the same run
/// folder keeps the earlier log); rank 0's also go to this console, except "error: " lines, which the launcher
/// keeps for its single closing sentence. The last "error: " line of every rank is remembered.
/// </summary>
internal sealed class RankProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly bool _echo;
    private readonly object _lock = new();
    private string? _lastError;

    private RankProcess(int rank, Process process, StreamWriter log, string logPath, bool echo)
    {
        Rank = rank;
        _process = process;
        _log = log;
        LogPath = logPath;
        _echo = echo;
    }

    public int Rank { get; }

    public string LogPath { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public bool KilledByLauncher { get; private set; }

    /// <summary>Stopped by a signal (SIGSTOP, SIGTSTP) or a tracer: state T or t in /proc/PID/stat. It cannot end
    /// by itself, so after a failure there is no point waiting for it.</summary>
    public bool IsStopped
    {
        get
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{_process.Id}/stat");
                return stat[stat.LastIndexOf(')') + 2] is 'T' or 't';
            }
            catch (IOException)
            {
                return false;  // gone already
            }
        }
    }

    public DateTime? EndedAt { get; private set; }

    public static RankProcess Start(int rank, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> variables, string logPath, bool echo)
    {
        (string host, string dll) = Self();
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in variables)
            start.Environment[name] = value;
        // A rank's progress goes to a log or a pipe, never to a terminal it could redraw.
        start.Environment["FINETUNE_PLAIN_PROGRESS"] = "1";
        var log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        log.WriteLine($"== finetune rank {rank}: {string.Join(' ', arguments)} ({DateTime.Now:yyyy-MM-dd HH:mm:ss}) ==");
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var rankProcess = new RankProcess(rank, process, log, logPath, echo);
        process.OutputDataReceived += (_, e) => rankProcess.Line(e.Data, error: false);
        process.ErrorDataReceived += (_, e) => rankProcess.Line(e.Data, error: true);
        process.Exited += (_, _) => rankProcess.EndedAt ??= DateTime.UtcNow;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return rankProcess;
    }

    /// <summary>Waits for the exit and for its output to be read to the end, then says how it ended.</summary>
    public RankExit Exit()
    {
        _process.WaitForExit();
        lock (_lock)
            return new RankExit(Rank, _process.ExitCode, EndedAt ?? DateTime.UtcNow, KilledByLauncher, _lastError, LogPath);
    }

    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    /// <summary>SIGKILL (Process.Kill on Linux), for a rank still running after its peers failed; works on a stopped process too.</summary>
    public void Kill()
    {
        if (_process.HasExited)
            return;
        KilledByLauncher = true;
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // it exited in between
        }
    }

    /// <summary>Passes a signal on (SIGTERM from the user: the rank saves a checkpoint and exits with 130).</summary>
    public void Signal(int signal)
    {
        if (!_process.HasExited)
            _ = kill(_process.Id, signal);
    }

    public void Dispose()
    {
        _process.Dispose();
        lock (_lock)
            _log.Dispose();
    }

    private void Line(string? line, bool error)
    {
        if (line is null)
            return;
        lock (_lock)
        {
            _log.WriteLine(line);
            bool isError = line.StartsWith("error: ", StringComparison.Ordinal);
            if (isError)
                _lastError = line["error: ".Length..];
            if (_echo && !isError)
                (error ? Console.Error : Console.Out).WriteLine(line);
        }
    }

    /// <summary>The dotnet host and finetune.dll of this very process, whichever way it was started.</summary>
    private static (string Host, string Dll) Self()
    {
        string dll = typeof(RankProcess).Assembly.Location;
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host))
            host = Environment.ProcessPath is string path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
        return (host, dll);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
