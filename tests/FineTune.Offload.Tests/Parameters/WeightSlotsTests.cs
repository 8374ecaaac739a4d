using FineTune.Offload.Rings;
using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Parameters;
using FineTune.Offload.Tests.Optimizer;
using Xunit;

namespace FineTune.Offload.Tests.Parameters;

/// <summary>
/// Weight slots over a bf16 file of known contents, with two slot classes: Acquire points at the range's bytes;
/// resident ranges are hits without reads; prefetches read once and never evict an unused prefetch; a class whose
/// slots are all held refuses; eviction is least recently used; Invalidate refuses while held and makes the next
/// Acquire see the rewritten file; Release of a range not held throws; the constructor refuses a range too big for
/// its class. Reads and hits are checked against <see cref="TransferCounters"/> after every call.
/// </summary>
public sealed class WeightSlotsTests : IDisposable
{
    // 8 pages of bf16 + 77 elements: 32,922 bytes, 9 pages.
    private const long ElementCount = 8 * 2048 + 77;
    private const int Seed = 3;

    // Windows (offset, bytes): r0 (0, 4096); r1 bytes [6000, 9000) -> (4096, 8192); r2 bytes [10000, 10400) ->
    // (8192, 4096); r3 bytes [12000, 20000) -> (8192, 12288); r4 bytes [24000, 32922) -> (20480, 16384).
    private static readonly WeightRange[] s_ranges =
    [
        new(10, 1000, 0),
        new(3000, 1500, 0),
        new(5000, 200, 0),
        new(6000, 4000, 1),
        new(12000, 4461, 1),
    ];
    private static readonly long[] s_windowByteCounts = [4096, 8192, 4096, 12288, 16384];

    private static readonly WeightSlotClass[] s_classes = [new(BufferKind.LayerWeightSlots, 2), new(BufferKind.EdgeWeightSlots, 1)];

    private readonly SwapDirectory _directory = new();
    private readonly WeightFile _file;
    private readonly HostMemoryPool _pool;
    private readonly WeightSlots _slots;

    public WeightSlotsTests()
    {
        _file = WeightFile.Create(_directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        WeightPattern.Fill(_file, Seed);
        _pool = PlannedPool();
        _slots = new WeightSlots(_file, _pool, s_ranges, s_classes, new TransferCounters());
    }

    public void Dispose()
    {
        _slots.Dispose();
        _pool.Dispose();
        _file.Dispose();
        _directory.Dispose();
    }

    private TransferCounters Counters => _slots.Counters;

    [Fact]
    public void PlanSizesEachClassForItsLargestWindow()
    {
        for (int r = 0; r < s_ranges.Length; r++)
        {
            Assert.Equal(s_windowByteCounts[r], WeightSlots.WindowByteCount(s_ranges[r], 2));
            Assert.Equal(s_windowByteCounts[r], _file.Window(s_ranges[r].First, s_ranges[r].Count).ByteCount);
        }
        Assert.Equal(2 * 8192 + 16384, _pool.ReservedByteCount);
    }

    [Fact]
    public void AcquireReturnsEachRangesBytes()
    {
        for (int r = 0; r < s_ranges.Length; r++)
        {
            nint pointer = _slots.Acquire(r);
            Assert.Equal(-1, WeightPattern.FirstMismatch(pointer, s_ranges[r].First, s_ranges[r].Count, Seed));
            _slots.Release(r);
            Assert.Equal(r + 1, Counters.Reads);
            Assert.Equal(s_windowByteCounts.Take(r + 1).Sum(), Counters.BytesRead);
        }
        Assert.Equal(0, Counters.Hits);
    }

    [Fact]
    public void AcquiringAResidentRangeIsAHitWithoutARead()
    {
        nint first = _slots.Acquire(1);
        _slots.Release(1);
        Assert.Equal((1L, 0L, 8192L), (Counters.Reads, Counters.Hits, Counters.BytesRead));
        nint again = _slots.Acquire(1);
        Assert.Equal((1L, 1L, 8192L), (Counters.Reads, Counters.Hits, Counters.BytesRead));
        Assert.Equal(first, again);
        // Held twice (two users): still one slot, one read.
        Assert.Equal(first, _slots.Acquire(1));
        Assert.Equal((1L, 2L), (Counters.Reads, Counters.Hits));
        Assert.Equal(-1, WeightPattern.FirstMismatch(again, 3000, 1500, Seed));
        _slots.Release(1);
        _slots.Release(1);
        Assert.Throws<InvalidOperationException>(() => _slots.Release(1));
    }

    [Fact]
    public void PrefetchThenAcquireReadsOnce()
    {
        _slots.Prefetch(3);
        Assert.Equal((1L, 12288L), (Counters.Reads, Counters.BytesRead));
        _slots.Prefetch(3); // already on its way: nothing new
        _slots.Prefetch(-1);
        _slots.Prefetch(s_ranges.Length);
        Assert.Equal(1, Counters.Reads);
        nint pointer = _slots.Acquire(3);
        Assert.Equal((1L, 1L), (Counters.Reads, Counters.Hits));
        Assert.Equal(-1, WeightPattern.FirstMismatch(pointer, 6000, 4000, Seed));
        _slots.Release(3);
    }

    [Fact]
    public void PrefetchNeverEvictsAnUnusedPrefetch()
    {
        _slots.Prefetch(0);
        _slots.Prefetch(1);
        Assert.Equal(2, Counters.Reads);
        _slots.Prefetch(2); // both small slots hold unused prefetches: skipped
        Assert.Equal(2, Counters.Reads);

        _slots.Acquire(0);
        _slots.Release(0); // r0 used: its slot may go now
        Assert.Equal((2L, 1L), (Counters.Reads, Counters.Hits));
        _slots.Prefetch(2);  // evicts r0, not the unused prefetch of r1
        Assert.Equal(3, Counters.Reads);
        nint r1 = _slots.Acquire(1);
        nint r2 = _slots.Acquire(2);
        Assert.Equal((3L, 3L), (Counters.Reads, Counters.Hits));
        Assert.Equal(-1, WeightPattern.FirstMismatch(r1, 3000, 1500, Seed));
        Assert.Equal(-1, WeightPattern.FirstMismatch(r2, 5000, 200, Seed));

        // A prefetch also never evicts a held range, and the large class is independent of the small one.
        _slots.Prefetch(0);
        Assert.Equal(3, Counters.Reads);
        _slots.Prefetch(4);
        _slots.Prefetch(3); // the single large slot holds r4's unused prefetch
        Assert.Equal(4, Counters.Reads);
        Assert.Equal(-1, WeightPattern.FirstMismatch(_slots.Acquire(4), 12000, 4461, Seed));
        Assert.Equal((4L, 4L), (Counters.Reads, Counters.Hits));
        _slots.Release(1);
        _slots.Release(2);
        _slots.Release(4);
    }

    [Fact]
    public void AcquireWhenEverySlotOfTheClassIsHeldThrows()
    {
        _slots.Acquire(3);
        Assert.Throws<InvalidOperationException>(() => _slots.Acquire(4));
        _slots.Acquire(0);
        _slots.Acquire(1);
        Assert.Throws<InvalidOperationException>(() => _slots.Acquire(2));
        Assert.Equal(3, Counters.Reads);
        _slots.Release(3);
        Assert.Equal(-1, WeightPattern.FirstMismatch(_slots.Acquire(4), 12000, 4461, Seed));
        _slots.Release(0);
        Assert.Equal(-1, WeightPattern.FirstMismatch(_slots.Acquire(2), 5000, 200, Seed));
        Assert.Equal(5, Counters.Reads);
        _slots.Release(1);
        _slots.Release(2);
        _slots.Release(4);
    }

    [Fact]
    public void EvictionIsLeastRecentlyUsed()
    {
        Use(0);
        Use(1);
        Use(0);                      // r1 is now the least recently used of the two small slots
        Assert.Equal((2L, 1L), (Counters.Reads, Counters.Hits));
        Use(2);                      // evicts r1
        Assert.Equal(3, Counters.Reads);
        Use(0);                      // still resident
        Assert.Equal((3L, 2L), (Counters.Reads, Counters.Hits));
        Use(1);                      // was evicted: read again, evicting r2 (used before r0's last use)
        Assert.Equal((4L, 2L), (Counters.Reads, Counters.Hits));
        Use(0);
        Assert.Equal((4L, 3L), (Counters.Reads, Counters.Hits));
        Use(2);                      // r2 was the one evicted
        Assert.Equal((5L, 3L), (Counters.Reads, Counters.Hits));
        Use(0);                      // r1 went this time (r0 was more recent)
        Use(1);
        Assert.Equal((6L, 4L), (Counters.Reads, Counters.Hits));
    }

    [Fact]
    public void InvalidateRefusesWhileHeldAndMakesTheNextAcquireReadTheRewrittenFile()
    {
        nint before = _slots.Acquire(0);
        Assert.Throws<InvalidOperationException>(() => _slots.Invalidate());
        _slots.Release(0);
        // The optimizer rewrites the first page of the file.
        WeightPattern.Write(_file, 0, 2048, seed: Seed + 1);
        Assert.Equal(-1, WeightPattern.FirstMismatch(before, 10, 1000, Seed)); // the resident copy is the old one
        _slots.Invalidate();
        nint after = _slots.Acquire(0);
        Assert.Equal((2L, 0L), (Counters.Reads, Counters.Hits));
        Assert.Equal(-1, WeightPattern.FirstMismatch(after, 10, 1000, Seed + 1));
        _slots.Release(0);
    }

    [Fact]
    public void InvalidateWaitsForAPrefetchInFlightAndDropsIt()
    {
        _slots.Prefetch(4);
        _slots.Invalidate();
        Assert.Equal(-1, WeightPattern.FirstMismatch(_slots.Acquire(4), 12000, 4461, Seed));
        Assert.Equal((2L, 0L), (Counters.Reads, Counters.Hits));
        _slots.Release(4);
    }

    [Fact]
    public void ReleaseOfARangeNeverAcquiredThrows()
    {
        Assert.Throws<InvalidOperationException>(() => _slots.Release(2));
        _slots.Prefetch(2); // resident but nobody holds it
        Assert.Throws<InvalidOperationException>(() => _slots.Release(2));
    }

    [Fact]
    public void ConstructorRefusesARangeLargerThanItsClassesSlots()
    {
        // r3's 12,288-byte window in the small class (8,192-byte slots).
        WeightRange[] tooLarge = [.. s_ranges, new WeightRange(6000, 4000, 0)];
        using (HostMemoryPool pool = PlannedPool())
        {
            ArgumentException error = Assert.Throws<ArgumentException>(() => new WeightSlots(_file, pool, tooLarge, s_classes, new TransferCounters()));
            Assert.Contains("12288", error.Message);
        }
        // A range exactly the size of the slots is fine.
        WeightRange[] fits = [.. s_ranges, new WeightRange(2048, 4096, 0)];
        using (HostMemoryPool pool = PlannedPool())
        using (var slots = new WeightSlots(_file, pool, fits, s_classes, new TransferCounters()))
        {
            Assert.Equal(-1, WeightPattern.FirstMismatch(slots.Acquire(5), 2048, 4096, Seed));
            slots.Release(5);
        }
    }

    [Fact]
    public void ConstructorRefusesASlotClassWithoutSlots()
    {
        using HostMemoryPool pool = PlannedPool();
        WeightRange[] badClass = [.. s_ranges, new WeightRange(0, 10, 2)];
        Assert.Throws<ArgumentException>(() => new WeightSlots(_file, pool, badClass, s_classes, new TransferCounters()));
    }

    // A refused range must not leave slots rented (it once did: the checks ran after renting, outside the cleanup).
    [Fact]
    public void ARefusedConstructorReturnsItsSlotsToThePool()
    {
        using HostMemoryPool pool = PlannedPool();
        WeightRange[] tooLarge = [.. s_ranges, new WeightRange(6000, 4000, 0)];
        Assert.Throws<ArgumentException>(() => new WeightSlots(_file, pool, tooLarge, s_classes, new TransferCounters()));
        Assert.Equal(0, pool.OutstandingLeaseCount);
        using var slots = new WeightSlots(_file, pool, s_ranges, s_classes, new TransferCounters());
    }

    private static HostMemoryPool PlannedPool()
    {
        var plan = new PoolPlan();
        WeightSlots.AddToPlan(plan, 2, s_ranges, s_classes);
        return HostMemoryPool.Create(plan, long.MaxValue);
    }

    private void Use(int range)
    {
        nint pointer = _slots.Acquire(range);
        Assert.Equal(-1, WeightPattern.FirstMismatch(pointer, s_ranges[range].First, s_ranges[range].Count, Seed));
        _slots.Release(range);
    }
}
