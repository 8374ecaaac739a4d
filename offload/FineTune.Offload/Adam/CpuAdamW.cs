namespace FineTune.Offload.Adam;

/// <summary>
/// Multi-threaded driver of <see cref="CpuAdamWKernel"/>: cuts segments into fixed chunks and runs them with
/// Parallel.For. Chunk boundaries depend only on the segments, never on the thread count, and every kernel path
/// gives the same bits, so results are identical on any machine with the same vector width. A segment of residual
/// masters (<see cref="AdamWSegment.Residual"/>) is decoded chunk by chunk into a per-thread 256 KiB scratch, updated
/// there by the same kernel and encoded back: the same bits as whole masters, with the traffic of residuals.
/// </summary>
public static unsafe class CpuAdamW
{
    /// <summary>Elements per parallel work item: 64 Ki elements = 1.75 MiB of state traffic, a multiple of 32.</summary>
    public const long ChunkElementCount = 1 << 16;

    /// <summary>Runs the fused pass over every segment. Returns false when any gradient was NaN or infinite.</summary>
    public static bool Update(in AdamWStepScalars scalars, IReadOnlyList<AdamWSegment> segments, int maxDegreeOfParallelism = -1)
    {
        foreach (AdamWSegment segment in segments)
            if (segment.Residual != 0 && (segment.WeightType != ElementType.BFloat16 || segment.PreviousWeight == 0))
                throw new ArgumentException("A segment whose masters are residuals needs bf16 weights and the weights before the step.", nameof(segments));
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
            float* master = seg.Residual == 0 ? (float*)seg.Master + start : Scratch();
            if (seg.Residual != 0)
                MasterResidual.Decode((ushort*)seg.PreviousWeight + start, (short*)seg.Residual + start, master, count);
            bool finite = CpuAdamWKernel.Run(s2,
                master, (float*)seg.FirstMoment + start, (float*)seg.SecondMoment + start,
                (byte*)seg.Gradient + start * gradientBytes, seg.GradientType,
                (byte*)seg.Weight + start * weightBytes, seg.WeightType, count);
            if (seg.Residual != 0)
                MasterResidual.Encode(master, (ushort*)seg.Weight + start, (short*)seg.Residual + start, count);
            if (!finite)
                Interlocked.Increment(ref nonFiniteChunks);
        });
        return nonFiniteChunks == 0;
    }

    [ThreadStatic]
    private static float* t_scratch;

    /// <summary>This thread's fp32 masters of one chunk, decoded from residuals (freed with the thread's pool: never; one per worker).</summary>
    private static float* Scratch()
    {
        if (t_scratch is null)
            t_scratch = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(ChunkElementCount * sizeof(float)), 64);
        return t_scratch;
    }

    /// <summary>One segment, for callers with a single flat buffer.</summary>
    public static bool Update(in AdamWStepScalars scalars, float* master, float* firstMoment, float* secondMoment,
        void* gradient, ElementType gradientType, void* weight, ElementType weightType, long elementCount, int maxDegreeOfParallelism = -1) =>
        Update(scalars, new[] { new AdamWSegment((nint)master, (nint)firstMoment, (nint)secondMoment, (nint)gradient, gradientType,
            (nint)weight, weightType, elementCount) }, maxDegreeOfParallelism);
}
