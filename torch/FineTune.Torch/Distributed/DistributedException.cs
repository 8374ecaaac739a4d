namespace FineTune.Torch.Distributed;

/// <summary>
/// A data-parallel setup or collective failed. The message is one sentence that names this rank, the operation,
/// the rank(s) that caused it when they can be told (a rank whose heartbeat stopped, the rank serving the store)
/// and what to change. The `finetune` command prints it and exits with 2. After a failed collective the group is
/// unusable (<see cref="ProcessGroup.IsBroken"/>): end the run, the last complete checkpoint stays valid.
/// </summary>
public sealed class DistributedException : Exception
{
    public DistributedException(string message, int rank, string operation, IReadOnlyList<int>? suspectRanks = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Rank = rank;
        Operation = operation;
        SuspectRanks = suspectRanks ?? [];
    }

    /// <summary>The rank that raised this (the one whose call failed).</summary>
    public int Rank { get; }

    /// <summary>What failed: "all_reduce", "rendezvous", "environment", ...</summary>
    public string Operation { get; }

    /// <summary>Ranks that stopped answering, when the failure could be traced to them; empty otherwise.</summary>
    public IReadOnlyList<int> SuspectRanks { get; }
}
