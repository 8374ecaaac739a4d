using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using FineTune.Torch.Distributed;

namespace FineTune.Cli.Launch;

/// <summary>
/// `--nproc N`: N data-parallel ranks of the same finetune command on this machine, as `torchrun
/// --nproc-per-node N` starts them: each child gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
/// MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, plus FINETUNE_DIST_TIMEOUT. Rank 0's output is shown here; every
/// rank's goes to LOG_DIR/rank-R.log. The launcher starts nothing else and trains nothing itself.
/// When a rank fails, its peers' collectives fail too (a closed connection at once, a silent peer at the timeout)
/// and each names the rank in its log within seconds; whatever still runs 10 s after the first failure is killed
/// (a wedged rank, or a peer still waiting out its timeout: the cause is known already, as torchrun's agent also
/// stops every worker when one fails); a rank stopped by SIGSTOP is killed as soon as all others have ended.
/// The launcher then prints
/// one sentence (<see cref="LaunchVerdict"/>) and exits with its code: 0, 1 (a bug), 2 (a failure the user can
/// act on) or 130 (interrupted). SIGTERM to the launcher is passed on to every rank; Ctrl-C reaches them from the
/// terminal directly (they share its process group), so it is not passed on twice.
/// </summary>
internal static class LocalLauncher
{
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(50);
    // The heartbeat diagnosis of a peer takes 3 intervals (3 s); leaving the group and exiting takes about 0.5 s
    // more when the machine is idle (measured: ranks end 3.5 s after a peer's SIGKILL), several under load.
    private static readonly TimeSpan s_afterFailure = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="arguments"/> (a finetune command line without --nproc) as N ranks.</summary>
    public static int Run(IReadOnlyList<string> arguments, int processCount, string logDirectory, TimeSpan timeout)
    {
        if (processCount < 2)
            throw new UserErrorException($"--nproc {processCount} starts no peers; give 2 or more ranks (or leave --nproc out for one process).");
        if (processCount > Environment.ProcessorCount * 8)
            throw new UserErrorException($"--nproc {processCount} is more than 8 ranks per core of this machine ({Environment.ProcessorCount} cores); use fewer.");
        Directory.CreateDirectory(logDirectory);
        int port = FreePort();
        var ranks = new List<RankProcess>();
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            lock (ranks)
                ranks.ForEach(r => r.Signal(15));
        });
        // Ctrl-C reached every rank from the terminal already; the launcher stays to collect their exits (dying here
        // would close rank 0's output pipe under it while it saves its checkpoint).
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
        try
        {
            lock (ranks)
            {
                for (int rank = 0; rank < processCount; rank++)
                {
                    var env = new DistributedEnvironment(rank, processCount, rank, processCount, "127.0.0.1", port, timeout);
                    string log = Path.Combine(logDirectory, $"rank-{rank}.log");
                    ranks.Add(RankProcess.Start(rank, arguments, RankVariables(env), log, echo: rank == 0));
                    Console.Error.WriteLine($"rank {rank}: pid {ranks[^1].ProcessId}, log {log}");
                }
            }
            WaitForRanks(ranks, s_afterFailure);
            (int code, string? sentence) = LaunchVerdict.Of(ranks.Select(r => r.Exit()).ToList());
            if (sentence is not null)
                Console.Error.WriteLine($"error: {sentence}");
            return code;
        }
        finally
        {
            lock (ranks)
            {
                ranks.ForEach(r => r.Kill());
                ranks.ForEach(r => r.Dispose());
            }
        }
    }

    /// <summary>Returns when every rank has ended; after the first failure the others get <paramref name="grace"/> to end.</summary>
    private static void WaitForRanks(List<RankProcess> ranks, TimeSpan grace)
    {
        DateTime? deadline = null;
        while (ranks.Any(r => !r.HasExited))
        {
            if (deadline is null && ranks.Any(r => r.HasExited && r.Exit().ExitCode is not (ExitCodes.Success or Commands.RunCommand.InterruptedExitCode)))
                deadline = DateTime.UtcNow + grace;
            if (deadline is DateTime d && (DateTime.UtcNow >= d || ranks.All(r => r.HasExited || r.IsStopped)))
            {
                lock (ranks)
                    ranks.ForEach(r => r.Kill());
            }
            // the last rank may end between the loop's test and this line
            ranks.FirstOrDefault(r => !r.HasExited)?.WaitForExit(s_poll);
        }
    }

    /// <summary>
    /// The torchrun variables, and the cores shared out: each rank's libtorch gets cores / N threads (at least one)
    /// unless FINETUNE_TORCH_THREADS is set (as torchrun sets OMP_NUM_THREADS for its workers), so N ranks do not
    /// run N times as many compute threads as the machine has cores.
    /// </summary>
    private static IReadOnlyDictionary<string, string> RankVariables(DistributedEnvironment env)
    {
        var variables = new Dictionary<string, string>(env.ToVariables());
        const string threads = "FINETUNE_TORCH_THREADS";
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(threads)))
            variables[threads] = Math.Max(1, Environment.ProcessorCount / env.LocalWorldSize).ToString(CultureInfo.InvariantCulture);
        return variables;
    }

    /// <summary>A port nobody listens on now (the kernel's pick); rank 0 binds it a moment later.</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The --timeout value as the ranks get it, checked.</summary>
    public static TimeSpan Timeout(int seconds) => seconds is >= 1 and <= 86_400
        ? TimeSpan.FromSeconds(seconds)
        : throw new UserErrorException(string.Create(CultureInfo.InvariantCulture, $"--timeout {seconds} is out of range; give the seconds a rank may wait for its peers, 1 to 86400."));
}
