using System.CommandLine;
using System.Globalization;
using FineTune.IO;
using FineTune.IO.Bench;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune bench io --dir DIR --size 1GiB`: sequential O_DIRECT write and read bandwidth per engine and an io_uring
/// queue-depth sweep, printed next to fio's figure measured in the same command, plus CRC32C on one core next to
/// that core's memory read bandwidth. Measuring lives in FineTune.IO.Bench; this file parses and prints.
/// </summary>
internal static class BenchIoCommand
{
    public static Command Create()
    {
        var directory = new Option<string>("--dir") { Description = "Directory to measure (the recipe's nvme_dir); bench files are deleted afterwards.", DefaultValueFactory = _ => Path.GetTempPath() };
        var size = new Option<string>("--size") { Description = "Bytes written and read per engine, e.g. 1GiB, 512MiB.", DefaultValueFactory = _ => "1GiB" };
        var block = new Option<string>("--block") { Description = "Bytes per request (fio --bs).", DefaultValueFactory = _ => "1MiB" };
        var queueDepth = new Option<int>("--queue-depth") { Description = "Requests in flight (fio --iodepth).", DefaultValueFactory = _ => 32 };
        var sweep = new Option<string>("--sweep") { Description = "Queue depths of the io_uring read sweep, comma-separated.", DefaultValueFactory = _ => "1,2,4,8,16,32,64" };
        var noFio = new Option<bool>("--no-fio") { Description = "Do not run fio." };
        var rounds = new Option<int>("--rounds") { Description = "Rounds of (engines, fio), alternated; medians are printed.", DefaultValueFactory = _ => 3 };

        var command = new Command("io", "Sequential O_DIRECT bandwidth of each I/O engine vs fio, a queue-depth sweep, and CRC32C vs memory bandwidth.");
        foreach (Option option in new Option[] { directory, size, block, queueDepth, sweep, noFio, rounds })
            command.Options.Add(option);
        command.SetAction(parseResult =>
        {
            var options = new IoBenchOptions
            {
                Directory = parseResult.GetValue(directory)!,
                FileByteCount = ByteCountText.Parse("--size", parseResult.GetValue(size)!),
                BlockByteCount = checked((int)ByteCountText.Parse("--block", parseResult.GetValue(block)!)),
                QueueDepth = parseResult.GetValue(queueDepth),
                SweepQueueDepths = ParseDepths(parseResult.GetValue(sweep)!),
                RunFio = !parseResult.GetValue(noFio),
                RoundCount = parseResult.GetValue(rounds),
            };
            IoBenchReport report;
            try
            {
                report = IoBench.RunAsync(options, message => Console.Error.WriteLine($"  ... {message}")).GetAwaiter().GetResult();
            }
            catch (DirectIoException exception)
            {
                throw new UserErrorException(exception.Message, exception);
            }
            Print(report, options);
            return ExitCodes.Success;
        });
        return command;
    }

    private static void Print(IoBenchReport report, IoBenchOptions options)
    {
        static string Gb(double bytesPerSecond) => (bytesPerSecond / 1e9).ToString("F2", CultureInfo.InvariantCulture);

        Console.WriteLine($"bench io: {report.Directory} ({(report.IsDirect ? "O_DIRECT" : "buffered: O_DIRECT refused")}), " +
                          $"{options.FileByteCount} bytes per pass, {options.BlockByteCount}-byte requests, queue depth {options.QueueDepth}, " +
                          $"median of {report.RoundCount} alternated rounds; GB/s = 1e9 bytes/s");
        Console.WriteLine($"{"engine",-10} {"op",-6} {"GB/s",6} {"fio GB/s",9} {"ratio",6}   rounds (GB/s)");
        foreach ((string engine, string operation) in report.Series)
        {
            IReadOnlyList<double> values = report.Values(engine, operation);
            double median = IoBenchReport.Median(values)!.Value;
            double? fio = operation == "write" ? report.Fio.MedianWriteBytesPerSecond : report.Fio.MedianReadBytesPerSecond;
            string fioText = fio is double f ? Gb(f) : "-";
            string ratio = fio is double reference ? (median / reference).ToString("F2", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"{engine,-10} {operation,-6} {Gb(median),6} {fioText,9} {ratio,6}   {string.Join(" ", values.Select(Gb))}");
        }
        if (report.Fio.WriteBytesPerSecond.Count > 0)
            Console.WriteLine($"{"fio",-10} {"write",-6} {"",6} {"",9} {"",6}   {string.Join(" ", report.Fio.WriteBytesPerSecond.Select(Gb))}");
        if (report.Fio.ReadBytesPerSecond.Count > 0)
            Console.WriteLine($"{"fio",-10} {"read",-6} {"",6} {"",9} {"",6}   {string.Join(" ", report.Fio.ReadBytesPerSecond.Select(Gb))}");
        if (report.Sweep.Count > 0)
        {
            Console.WriteLine($"io_uring sequential read by queue depth ({report.Sweep[0].ByteCount} bytes each):");
            foreach (IoBenchMeasurement point in report.Sweep)
                Console.WriteLine($"  qd {point.QueueDepth,3}: {Gb(point.BytesPerSecond),6} GB/s");
        }
        if (report.Fio.Problem is not null)
            Console.WriteLine($"fio: {report.Fio.Problem}");
        foreach (string fioCommand in report.Fio.Commands)
            Console.WriteLine($"fio command: {fioCommand}");
        CrcBenchResult crc = report.Crc;
        Console.WriteLine($"crc32c ({crc.Implementation}, one core, CPU time, {crc.BufferByteCount} bytes): {Gb(crc.CrcBytesPerSecond)} GB/s; " +
                          $"memory read (streaming sum, same buffer): {Gb(crc.MemoryReadBytesPerSecond)} GB/s; ratio {crc.Ratio.ToString("F2", CultureInfo.InvariantCulture)}");
    }

    private static IReadOnlyList<int> ParseDepths(string text)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(part => int.Parse(part, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new UserErrorException($"--sweep '{text}' must be comma-separated queue depths, e.g. 1,4,16,32.");
        }
    }
}
