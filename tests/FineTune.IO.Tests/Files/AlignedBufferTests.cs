using System.Globalization;
using Xunit;

namespace FineTune.IO.Tests.Files;

/// <summary>
/// Transfer buffers of 2 MiB and more start on a huge page and are backed by transparent huge pages where the kernel
/// offers them (the direct-I/O rate on a virtual disk depended on it, docs/scaling.md); smaller ones keep the sector
/// alignment O_DIRECT needs.
/// </summary>
public sealed class AlignedBufferTests
{
    [Fact]
    public unsafe void LargeBuffersStartOnAHugePageAndSmallOnesOnASector()
    {
        using var large = new AlignedBuffer(3L << 20);
        using var small = new AlignedBuffer(64 << 10);
        Assert.Equal(0, (long)large.Pointer % AlignedBuffer.HugePageByteCount);
        Assert.Equal(0, (long)small.Pointer % AlignedBuffer.Alignment);
        Assert.Equal(3L << 20, large.CapacityByteCount);
        Assert.All(new[] { large.Span[0], large.Span[(3 << 20) - 1], small.Span[0] }, b => Assert.Equal(0, b)); // cleared
    }

    [ThpFact]
    public unsafe void LargeBuffersAreBackedByHugePages()
    {
        using var buffer = new AlignedBuffer(16L << 20);
        long hugeKiB = AnonHugePagesKiBAt((long)buffer.Pointer);
        Assert.True(hugeKiB >= 2048, $"the 16 MiB buffer's mapping has {hugeKiB} KiB of huge pages");
    }

    /// <summary>AnonHugePages of the /proc/self/smaps mapping that holds <paramref name="address"/>.</summary>
    private static long AnonHugePagesKiBAt(long address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            if (dash > 0 && line.IndexOf(' ') > dash && long.TryParse(line[..dash], NumberStyles.HexNumber, null, out long start)
                && long.TryParse(line[(dash + 1)..line.IndexOf(' ')], NumberStyles.HexNumber, null, out long end))
                inside = address >= start && address < end;
            else if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        return 0;
    }
}

/// <summary>A fact that needs transparent huge pages (skipped, with the reason, where the kernel has them off).</summary>
internal sealed class ThpFactAttribute : FactAttribute
{
    private const string Setting = "/sys/kernel/mm/transparent_hugepage/enabled";

    public ThpFactAttribute()
    {
        string mode = File.Exists(Setting) ? File.ReadAllText(Setting) : "";
        if (!mode.Contains("[always]", StringComparison.Ordinal) && !mode.Contains("[madvise]", StringComparison.Ordinal))
            Skip = $"transparent huge pages are off here ({Setting}: '{mode.Trim()}')";
    }
}
