using Xunit;

namespace FineTune.Cli.Tests.Run;

/// <summary>A fact that needs <see cref="SizeLimitedFolder"/>: skipped, with the reason, where tmpfs cannot be mounted.</summary>
internal sealed class MountFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> s_problem = new(() =>
    {
        try
        {
            using var probe = new SizeLimitedFolder(1);
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return "mounting a size-limited tmpfs is not allowed here (needs root / CAP_SYS_ADMIN), so a full disk cannot be made";
        }
    });

    public MountFactAttribute()
    {
        if (s_problem.Value is string problem)
            Skip = problem;
    }
}
