using FineTune.Offload.Memory;

namespace FineTune.Trainer.Tests.Fuzz;

/// <summary>
/// The contract every fuzzed input must meet (issue 21): success, or a <see cref="UserErrorException"/> whose message
/// is one sentence (no line break, no stack trace), within <see cref="TimeLimit"/>. Anything else (another
/// exception type, a hang) is a bug and fails the property with the input that caused it.
/// </summary>
internal static class FuzzOutcome
{
    public static readonly TimeSpan TimeLimit = TimeSpan.FromSeconds(10);

    /// <summary>Peak resident memory the whole fuzz may reach (VmHWM of the test process), stated in the test names.</summary>
    public const long PeakResidentLimitByteCount = 2L << 30;

    /// <summary>Cases per property: FINETUNE_FUZZ_CASES (tools/fuzz-inputs.sh runs many more), else the CI default.</summary>
    public static int Cases(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("FINETUNE_FUZZ_CASES"), out int cases) && cases > 0 ? cases : ciDefault;

    /// <summary>Runs one case; returns true (the property holds) or throws with the input and what went wrong.</summary>
    public static bool Holds(string input, Action action)
    {
        var task = Task.Run(() =>
        {
            try
            {
                action();
                return (Exception?)null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        if (!task.Wait(TimeLimit))
            throw new InvalidOperationException($"no answer within {TimeLimit.TotalSeconds} s (a hang) for input:\n{input}");
        Exception? outcome = task.Result;
        if (outcome is null)
            return true;
        if (outcome is UserErrorException user && !user.Message.Contains('\n') && user.Message.Length > 0)
            return true;
        throw new InvalidOperationException($"{outcome.GetType().Name} instead of success or one sentence for input:\n{input}\n--- got:\n{outcome}");
    }

    public static void CheckPeakResident()
    {
        long peak = ProcessMemory.PeakResidentByteCount();
        if (peak > PeakResidentLimitByteCount)
            throw new InvalidOperationException($"peak resident memory {peak} bytes exceeds the fuzz bound {PeakResidentLimitByteCount}");
    }
}
