using System.Runtime.InteropServices;
using FineTune.IO.Native;

namespace FineTune.IO;

/// <summary>
/// A second name for an existing file (link(2)): both names are the same data, which lives until the last name is
/// deleted. Checkpoints take NVMe swap files this way, without copying them: the swap writes its next changes to fresh
/// extents, so the checkpoint's name keeps the state as it was (see NvmeSwapStore).
/// </summary>
public static class HardLink
{
    /// <summary>
    /// Links <paramref name="newPath"/> to <paramref name="existingPath"/>; false with the reason when the filesystem
    /// refuses (another filesystem, no hard links, too many links), so the caller can copy instead.
    /// </summary>
    public static bool TryCreate(string existingPath, string newPath, out string? reason)
    {
        reason = null;
        if (LibC.Link(existingPath, newPath) == 0)
            return true;
        reason = LibC.Describe(Marshal.GetLastPInvokeError());
        return false;
    }

    /// <summary>Whether two folders lie on the same filesystem (a hard link between them can work), by a trial link in <paramref name="to"/>.</summary>
    public static bool Possible(string from, string to)
    {
        string probe = Path.Combine(from, $".finetune-link-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string linked = Path.Combine(to, Path.GetFileName(probe));
        try
        {
            File.WriteAllBytes(probe, []);
            if (!TryCreate(probe, linked, out _))
                return false;
            File.Delete(linked);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
