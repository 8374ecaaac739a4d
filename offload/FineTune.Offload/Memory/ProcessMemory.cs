namespace FineTune.Offload.Memory;

/// <summary>Resident-set figures of this process from /proc/self/status (Linux); zero where unavailable.</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size (VmHWM) in bytes.</summary>
    public static long PeakResidentByteCount() => ReadStatusKiB("VmHWM:") * 1024;

    /// <summary>Current resident set size (VmRSS) in bytes.</summary>
    public static long ResidentByteCount() => ReadStatusKiB("VmRSS:") * 1024;

    private static long ReadStatusKiB(string key)
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path))
            return 0;
        foreach (string line in File.ReadLines(path))
        {
            if (!line.StartsWith(key, StringComparison.Ordinal))
                continue;
            // Format: "VmHWM:\t  123456 kB"
            string[] parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        return 0;
    }
}
