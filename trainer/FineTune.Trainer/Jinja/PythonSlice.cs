namespace FineTune.Trainer.Jinja;

/// <summary>The indices a Python slice [start:stop:step] selects from a sequence of a given length (slice.indices).</summary>
internal static class PythonSlice
{
    public static IEnumerable<int> Indices(int length, long? start, long? stop, long? step)
    {
        long s = step ?? 1;
        if (s == 0)
            throw JinjaException.Runtime("a slice step cannot be zero");
        long lower = s > 0 ? 0 : -1, upper = s > 0 ? length : length - 1;
        long begin = Clamp(start, s > 0 ? lower : upper, length, lower, upper);
        long end = Clamp(stop, s > 0 ? upper : lower, length, lower, upper);
        if (s > 0)
        {
            for (long i = begin; i < end; i += s)
                yield return (int)i;
        }
        else
        {
            for (long i = begin; i > end; i += s)
                yield return (int)i;
        }
    }

    private static long Clamp(long? index, long missing, int length, long lower, long upper)
    {
        if (index is not long i)
            return missing;
        if (i < 0)
            i += length;
        return Math.Clamp(i, lower, upper);
    }

    /// <summary>A Python index into a sequence (negative counts from the end); null when out of range.</summary>
    public static int? Index(long index, int length)
    {
        long i = index < 0 ? index + length : index;
        return i >= 0 && i < length ? (int)i : null;
    }
}
