namespace FineTune.Offload.Adam;

/// <summary>
/// Multi-threaded driver of <see cref="CpuAdamWKernel"/>: cuts segments into fixed chunks and runs them with
/// Parallel.For. Chunk boundaries depend only on the segments, never on the thread count, and every kernel path
/// gives the same bits, so results are identical on any machine with the same vector width.
/// </summary>
public static unsafe class CpuAdamW
{
    /// <summary>Elements per parallel work item: 64 Ki elements = 1.75 MiB of state traffic, a multiple of 32.</summary>
    public const long ChunkElementCount = 1 << 16;

    /// <summary>Runs the fused pass over every segment. Returns false when any gradient was NaN or infinite.</summary>
    public static bool Update(in AdamWStepScalars scalars, IReadOnlyList<AdamWSegment> segments, int maxDegreeOfParallelism = -1)
    {
        var chunks = new List<(int Segment, long Start, long Count)>();
        for (int s = 0; s < segments.Count; s++)
            for (long start = 0; start < segments[s].ElementCount; start += ChunkElementCount)
                chunks.Add((s, start, Math.Min(ChunkElementCount, segments[s].ElementCount - start)));
        int nonFiniteChunks = 0;
        AdamWStepScalars s2 = scalars;
        var options = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism };
        Parallel.For(0, chunks.Count, options, c =>
        {
            (int index, long start, long count) = chunks[c];
            AdamWSegment seg = segments[index];
            int gradientBytes = seg.GradientType.ByteCount();
            int weightBytes = seg.WeightType.ByteCount();
            bool finite = CpuAdamWKernel.Run(s2,
                (float*)seg.Master + start, (float*)seg.FirstMoment + start, (float*)seg.SecondMoment + start,
                (byte*)seg.Gradient + start * gradientBytes, seg.GradientType,
                (byte*)seg.Weight + start * weightBytes, seg.WeightType, count);
            if (!finite)
                Interlocked.Increment(ref nonFiniteChunks);
        });
        return nonFiniteChunks == 0;
    }

    /// <summary>One segment, for callers with a single flat buffer.</summary>
    public static bool Update(in AdamWStepScalars scalars, float* master, float* firstMoment, float* secondMoment,
        void* gradient, ElementType gradientType, void* weight, ElementType weightType, long elementCount, int maxDegreeOfParallelism = -1) =>
        Update(scalars, new[] { new AdamWSegment((nint)master, (nint)firstMoment, (nint)secondMoment, (nint)gradient, gradientType,
            (nint)weight, weightType, elementCount) }, maxDegreeOfParallelism);
}
