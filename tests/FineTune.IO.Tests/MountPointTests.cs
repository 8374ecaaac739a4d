using FineTune.IO;
using Xunit;

namespace FineTune.IO.Tests;

/// <summary>
/// Which file system a folder is on, from /proc/self/mountinfo: what decides whether a checkpoint can link the swap
/// file (and whether their free space is one). DriveInfo took every folder as its own drive, so the checkpoint space
/// check counted NVMe swap on the same disk only when both folders were yet to be created.
/// </summary>
public sealed class MountPointTests
{
    [Fact]
    public void FoldersOnOneFileSystemAreTheSameAndProcIsAnother()
    {
        string root = Directory.CreateTempSubdirectory("ft-mount-").FullName;
        try
        {
            string a = Directory.CreateDirectory(Path.Combine(root, "a")).FullName;
            string b = Directory.CreateDirectory(Path.Combine(root, "b", "c")).FullName;
            Assert.True(MountPoint.Same(a, b));
            Assert.True(MountPoint.Same(a, Path.Combine(root, "not", "yet", "made"))); // the nearest existing parent decides
            Assert.Equal("/proc", MountPoint.Of("/proc/self/status"));
            Assert.False(MountPoint.Same(a, "/proc/self"));
            Assert.True(HardLink.TryCreate(WriteFile(a), Path.Combine(b, "linked"), out string? reason), reason);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string WriteFile(string folder)
    {
        string path = Path.Combine(folder, "file");
        File.WriteAllText(path, "x");
        return path;
    }
}
