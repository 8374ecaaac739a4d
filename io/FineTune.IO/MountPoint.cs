namespace FineTune.IO;

/// <summary>
/// The file system a path lies on: the longest mount point in /proc/self/mountinfo that contains it (the nearest
/// existing parent when the path does not exist yet). Two folders on the same mount can share files through hard
/// links, and share free space. .NET's DriveInfo cannot tell: on Linux it takes any folder as its own "drive".
/// </summary>
public static class MountPoint
{
    private const string MountInfo = "/proc/self/mountinfo";

    /// <summary>The mount point holding <paramref name="path"/>, or null when it cannot be told (no mountinfo, no existing parent).</summary>
    public static string? Of(string path)
    {
        string? existing = Path.GetFullPath(path);
        while (existing is not null && !Directory.Exists(existing) && !File.Exists(existing))
            existing = Path.GetDirectoryName(existing);
        if (existing is null || !File.Exists(MountInfo))
            return null;
        string resolved = Resolve(existing);
        string? best = null;
        foreach (string line in File.ReadLines(MountInfo))
        {
            // "36 35 98:0 /mnt1 /mnt/parent rw,... - ext3 /dev/root rw": the fifth field is the mount point, octal-escaped
            string[] fields = line.Split(' ');
            if (fields.Length < 5)
                continue;
            string mount = Unescape(fields[4]);
            if (Contains(mount, resolved) && (best is null || mount.Length > best.Length))
                best = mount;
        }
        return best;
    }

    /// <summary>True when both paths are known to lie on one file system.</summary>
    public static bool Same(string a, string b) => Of(a) is string first && Of(b) is string second && first == second;

    private static bool Contains(string mount, string path) =>
        mount == "/" || path == mount || path.StartsWith(mount + "/", StringComparison.Ordinal);

    /// <summary>The path with every symbolic link on the way resolved (a folder may be a link onto another disk).</summary>
    private static string Resolve(string path)
    {
        string current = "/";
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            FileSystemInfo? target = info.LinkTarget is null ? null : info.ResolveLinkTarget(returnFinalTarget: true);
            current = target is null ? next : Path.GetFullPath(target.FullName);
        }
        return current;
    }

    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
