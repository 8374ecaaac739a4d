using FineTune.Torch.Distributed;

namespace FineTune.Cli.Launch;

/// <summary>
/// Until the engine partitions its optimizer over ranks (ZeRO), a training run with world size > 1 is refused:
/// N ranks would train N independent copies of the same model, N times the machine for one run's result. Every
/// rank still joins the group first and meets the others at a barrier, so the launcher (or torchrun), the
/// variables and the rendezvous are proven on the user's machine, and no rank tears the store down early.
/// </summary>
internal static class DistributedRunGate
{
    public static int Refuse(DistributedEnvironment env)
    {
        using (ProcessGroup group = env.JoinGroup())
            group.Barrier();
        throw new UserErrorException(
            $"data-parallel training (world size {env.WorldSize}) is not wired into the training engine yet; run with one process (no --nproc, no torchrun) until it is.");
    }
}
