using System.Runtime.InteropServices;

namespace FineTune.Torch.Native;

/// <summary>
/// How libtorch's OpenMP threads wait between parallel regions, fixed before libtorch (and libgomp, which reads its
/// environment once, when it is loaded) comes into the process. By default libgomp spins a waiting thread for about
/// 300,000 iterations before it sleeps: on a machine whose cores are all busy (FineTune's own CPU AdamW, CRC and I/O
/// threads overlapping backward, or other processes) those spinning threads take the cores from the threads that
/// have work. Measured on the 2-core development VM (docs/benchmarks.md, "Threads"): a 60-step quickstart-shaped run
/// on 2 libtorch threads took 54-815 s with the default spin and 12-18 s with OMP_WAIT_POLICY=PASSIVE in the same
/// rounds. So FineTune sets PASSIVE unless the user chose OMP_WAIT_POLICY or GOMP_SPINCOUNT. Results do not depend
/// on it (how threads wait, not how work is split).
/// </summary>
public static class OpenMpPolicy
{
    private const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    private const string SpinCountVariable = "GOMP_SPINCOUNT";
    private static string? s_applied;

    /// <summary>The policy in force: "PASSIVE (FineTune's default)", or what the user set, e.g. "OMP_WAIT_POLICY=ACTIVE".</summary>
    public static string Description => s_applied ?? Apply();

    /// <summary>Sets OMP_WAIT_POLICY=PASSIVE in the native environment unless the user set a policy; idempotent.</summary>
    internal static string Apply()
    {
        if (s_applied is not null)
            return s_applied;
        string? policy = Environment.GetEnvironmentVariable(WaitPolicyVariable), spin = Environment.GetEnvironmentVariable(SpinCountVariable);
        if (!string.IsNullOrEmpty(policy) || !string.IsNullOrEmpty(spin))
            return s_applied = string.Join(", ", new[] { (WaitPolicyVariable, policy), (SpinCountVariable, spin) }.Where(v => !string.IsNullOrEmpty(v.Item2)).Select(v => $"{v.Item1}={v.Item2}"));
        // Environment.SetEnvironmentVariable changes .NET's copy only; libgomp reads the C environment.
        if (setenv(WaitPolicyVariable, "PASSIVE", 0) != 0)
            return s_applied = "libgomp default (setenv failed)";
        Environment.SetEnvironmentVariable(WaitPolicyVariable, "PASSIVE");
        return s_applied = "PASSIVE (FineTune's default)";
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
