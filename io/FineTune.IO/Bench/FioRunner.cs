using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace FineTune.IO.Bench;

/// <summary>
/// Runs fio with the same shape as our passes (sequential, 1 MiB blocks, iodepth 32, O_DIRECT, io_uring) on the
/// same directory and reads bw_bytes from its JSON output: the reference figure our engines are compared to.
/// When fio is not installed, the result says so and carries the commands to run by hand. One call is one round.
/// </summary>
public static class FioRunner
{
    public static FioResult Run(string directory, long fileByteCount, int blockByteCount, int queueDepth, TimeSpan timeout)
    {
        string file = Path.Combine(directory, $"finetune-bench-fio-{Environment.ProcessId}.dat");
        string[] write = Arguments(file, fileByteCount, blockByteCount, queueDepth, "write");
        string[] read = Arguments(file, fileByteCount, blockByteCount, queueDepth, "read");
        var commands = new[] { "fio " + string.Join(' ', write), "fio " + string.Join(' ', read) };
        try
        {
            double? writeBandwidth = RunOne(write, "write", timeout, out string? writeProblem);
            if (writeProblem is not null)
                return new FioResult(Array.Empty<double>(), Array.Empty<double>(), commands, writeProblem);
            double? readBandwidth = RunOne(read, "read", timeout, out string? readProblem);
            return new FioResult(new[] { writeBandwidth!.Value }, readBandwidth is double r ? new[] { r } : Array.Empty<double>(), commands, readProblem);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string[] Arguments(string file, long fileByteCount, int blockByteCount, int queueDepth, string direction) => new[]
    {
        $"--name=finetune-{direction}", $"--filename={file}", $"--size={fileByteCount}", $"--bs={blockByteCount}",
        $"--iodepth={queueDepth}", "--direct=1", "--ioengine=io_uring", $"--rw={direction}", "--output-format=json",
    };

    private static double? RunOne(string[] arguments, string direction, TimeSpan timeout, out string? problem)
    {
        var start = new ProcessStartInfo("fio") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            problem = "fio is not installed (apt-get install fio); run the commands below to compare by hand";
            return null;
        }
        using (process)
        {
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                problem = $"fio did not finish within {timeout.TotalSeconds:F0} s";
                return null;
            }
            string json = output.Result;
            int brace = json.IndexOf('{');
            if (process.ExitCode != 0 || brace < 0)
            {
                problem = $"fio exited with code {process.ExitCode}: {errors.Result.Trim()}";
                return null;
            }
            problem = null;
            return ParseBandwidth(json[brace..], direction);
        }
    }

    /// <summary>jobs[0].{read|write}.bw_bytes from fio's --output-format=json (bytes per second).</summary>
    public static double ParseBandwidth(string json, string direction)
    {
        using JsonDocument document = JsonDocument.Parse(json);
        JsonElement job = document.RootElement.GetProperty("jobs")[0];
        JsonElement bandwidth = job.GetProperty(direction).GetProperty("bw_bytes");
        return bandwidth.ValueKind == JsonValueKind.Number
            ? bandwidth.GetDouble()
            : double.Parse(bandwidth.GetString()!, CultureInfo.InvariantCulture);
    }
}
