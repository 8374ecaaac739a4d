using System.Globalization;

namespace FineTune.Torch.Distributed;

/// <summary>
/// Where this process sits in a data-parallel run, read from the variables torchrun sets (and `finetune run
/// --nproc N`, srun wrappers and other launchers set the same way): RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; plus FINETUNE_DIST_TIMEOUT (seconds) for the group's timeout.
/// With none of RANK and WORLD_SIZE set the process is a single rank (<see cref="Single"/>); a partial or malformed
/// set is refused with a sentence naming the variable. <see cref="JoinGroup"/> is torch.distributed's
/// init_process_group("gloo", init_method="env://"): rank 0 serves the store on MASTER_PORT, every rank joins.
/// </summary>
public sealed record DistributedEnvironment(int Rank, int WorldSize, int LocalRank, int LocalWorldSize, string MasterAddress, int MasterPort, TimeSpan Timeout)
{
    public const string RankVariable = "RANK";
    public const string WorldSizeVariable = "WORLD_SIZE";
    public const string LocalRankVariable = "LOCAL_RANK";
    public const string LocalWorldSizeVariable = "LOCAL_WORLD_SIZE";
    public const string MasterAddressVariable = "MASTER_ADDR";
    public const string MasterPortVariable = "MASTER_PORT";
    public const string TimeoutVariable = "FINETUNE_DIST_TIMEOUT";

    /// <summary>One process, no peers: what a run without a launcher is.</summary>
    public static DistributedEnvironment Single { get; } = new(0, 1, 0, 1, "127.0.0.1", 29500, ProcessGroupOptions.DefaultTimeout);

    public bool IsDistributed => WorldSize > 1;

    /// <summary>This process's environment.</summary>
    public static DistributedEnvironment FromProcess() => Parse(Environment.GetEnvironmentVariable);

    /// <summary>Reads the variables through <paramref name="variable"/> (null or empty: unset).</summary>
    public static DistributedEnvironment Parse(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        string? Get(string name) => variable(name) is { Length: > 0 } value ? value.Trim() : null;
        string? rankText = Get(RankVariable), worldText = Get(WorldSizeVariable);
        TimeSpan timeout = Get(TimeoutVariable) is string t ? TimeSpan.FromSeconds(Number(TimeoutVariable, t, 1, 86_400, -1, "give the timeout of joining and of each collective in whole seconds")) : ProcessGroupOptions.DefaultTimeout;
        if (rankText is null && worldText is null)
            return Single with { Timeout = timeout };
        if (rankText is null || worldText is null)
            throw Refuse(-1, $"{(rankText is null ? WorldSizeVariable : RankVariable)} is set but {(rankText is null ? RankVariable : WorldSizeVariable)} is not; set both (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), or neither for a single process.");
        int worldSize = Number(WorldSizeVariable, worldText, 1, 65_536, -1);
        int rank = Number(RankVariable, rankText, 0, worldSize - 1, -1);
        int localWorldSize = Get(LocalWorldSizeVariable) is string lw ? Number(LocalWorldSizeVariable, lw, 1, worldSize, rank) : worldSize;
        int localRank = Get(LocalRankVariable) is string lr ? Number(LocalRankVariable, lr, 0, localWorldSize - 1, rank) : rank % localWorldSize;
        string? address = Get(MasterAddressVariable), portText = Get(MasterPortVariable);
        if (worldSize > 1 && (address is null || portText is null))
            throw Refuse(rank, $"WORLD_SIZE is {worldSize} but {(address is null ? MasterAddressVariable : MasterPortVariable)} is not set; give every rank the address and port where rank 0 serves the rendezvous store (e.g. MASTER_ADDR=127.0.0.1 MASTER_PORT=29500).");
        int port = portText is null ? 29500 : Number(MasterPortVariable, portText, 1, 65_535, rank);
        return new DistributedEnvironment(rank, worldSize, localRank, localWorldSize, address ?? "127.0.0.1", port, timeout);
    }

    /// <summary>The variables that describe this rank to a child process (what a launcher sets).</summary>
    public IReadOnlyDictionary<string, string> ToVariables() => new Dictionary<string, string>
    {
        [RankVariable] = Text(Rank),
        [WorldSizeVariable] = Text(WorldSize),
        [LocalRankVariable] = Text(LocalRank),
        [LocalWorldSizeVariable] = Text(LocalWorldSize),
        [MasterAddressVariable] = MasterAddress,
        [MasterPortVariable] = Text(MasterPort),
        [TimeoutVariable] = ((long)Math.Ceiling(Timeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Serves (rank 0) or reaches (the others) the store at MASTER_ADDR:MASTER_PORT and joins the group of
    /// WORLD_SIZE ranks over it. The group owns the store. Gloo binds 127.0.0.1 when the master is local.
    /// </summary>
    public ProcessGroup JoinGroup(ProcessGroupOptions? options = null)
    {
        options ??= new ProcessGroupOptions { Timeout = Timeout };
        if (options.GlooHostName is null && IsLoopback(MasterAddress))
            options = options with { GlooHostName = "127.0.0.1" };
        TcpStore store;
        try
        {
            // A single rank has no peers to find it: any free port will do, so two single runs never collide.
            store = Rank == 0
                ? TcpStore.Serve(MasterAddress, IsDistributed ? MasterPort : 0, WorldSize, options.Timeout)
                : TcpStore.Connect(MasterAddress, MasterPort, WorldSize, options.Timeout);
        }
        catch (TorchException e)
        {
            throw Rank == 0
                ? Refuse(Rank, $"rank 0 of {WorldSize} cannot serve the rendezvous store on port {MasterPort} ({e.Message.TrimEnd('.')}); choose a free MASTER_PORT.", e)
                : Refuse(Rank, $"rank {Rank} of {WorldSize} could not reach the rendezvous store at {MasterAddress}:{MasterPort} within {options.Timeout.TotalSeconds:0.#} s ({e.Message.TrimEnd('.')}); rank 0 serves it: start it, or check MASTER_ADDR and MASTER_PORT.", e);
        }
        try
        {
            return ProcessGroup.Join(store, Rank, WorldSize, options, ownsStore: true);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private static bool IsLoopback(string address) =>
        address is "localhost" or "::1" || address.StartsWith("127.", StringComparison.Ordinal);

    private static int Number(string name, string text, int min, int max, int rank, string hint = "set it as torchrun does")
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
            throw Refuse(rank, $"{name}={text} is not a whole number in {min}..{max}; {hint}.");
        return value;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static DistributedException Refuse(int rank, string message, Exception? inner = null) => new(message, rank, "environment", null, inner);
}
