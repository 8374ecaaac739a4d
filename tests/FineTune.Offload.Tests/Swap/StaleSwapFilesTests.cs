using FineTune.Offload.Storage;
using FineTune.Offload.Swap;
using FineTune.Offload.Tests.Optimizer;
using Xunit;

namespace FineTune.Offload.Tests.Swap;

/// <summary>
/// Issue 21: three kills left six swap files behind, each eating into nvme_gb. A swap file is flocked by its live
/// owner; creating one removes every unheld finetune-*.swap in the folder (a dead run's), keeps the live ones, and
/// never follows a symlink named like a swap file.
/// </summary>
public sealed class StaleSwapFilesTests
{
    [Fact]
    public void CreatingASwapFileRemovesDeadRunsFilesAndKeepsLiveOnes()
    {
        using var directory = new SwapDirectory();
        using var outside = new SwapDirectory();
        // what a SIGKILLed run leaves: its files, no process holding them
        string dead = Path.Combine(directory.Path, "finetune-optimizer-states-4242-0123456789abcdef.swap");
        File.WriteAllBytes(dead, new byte[8192]);
        string target = Path.Combine(outside.Path, "finetune-precious.swap");
        File.WriteAllBytes(target, new byte[100]);
        string link = Path.Combine(directory.Path, "finetune-link.swap");
        File.CreateSymbolicLink(link, target);
        Assert.Equal(8192, StaleSwapFiles.ReclaimableByteCount(directory.Path));

        using DeviceFile live = DeviceFile.Create(directory.Path, "activations", 4096);
        Assert.False(File.Exists(dead));
        Assert.True(File.Exists(link) && File.Exists(target));

        // a second file while the first lives: the first is held, so it stays
        using (DeviceFile second = DeviceFile.Create(directory.Path, "weights", 4096))
        {
            Assert.True(File.Exists(live.Path));
            Assert.Equal(0, StaleSwapFiles.ReclaimableByteCount(directory.Path));
        }
        Assert.True(File.Exists(live.Path));
        Assert.DoesNotContain(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), Path.GetFileName(live.Path));
    }
}
