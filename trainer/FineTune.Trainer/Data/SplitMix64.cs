namespace FineTune.Trainer.Data;

/// <summary>
/// SplitMix64, the 64-bit generator FineTune uses for every data-order decision, so that a seed gives the same
/// order on every machine and .NET version (System.Random's algorithm is unspecified). The whole state is one
/// ulong. reference: Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014;
/// constants as in Vigna's splitmix64.c (https://prng.di.unimi.it/splitmix64.c).
/// </summary>
public struct SplitMix64
{
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, bound) without modulo bias (rejects the top partial range). bound must be &gt; 0.</summary>
    public ulong NextBelow(ulong bound)
    {
        if (bound == 0)
            throw new ArgumentOutOfRangeException(nameof(bound), "bound must be positive");
        ulong limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong value;
        do
            value = NextUInt64();
        while (value >= limit);
        return value % bound;
    }

    /// <summary>
    /// The permutation of 0..count-1 for one epoch: Fisher-Yates driven by a generator seeded from (seed, epoch),
    /// so any epoch's order can be rebuilt on resume without replaying earlier ones.
    /// reference: Knuth, TAOCP vol. 2, 3.4.2 Algorithm P.
    /// </summary>
    public static int[] Permutation(int count, ulong seed, int epoch)
    {
        var mixer = new SplitMix64(seed ^ (0xD1B54A32D192ED03UL * (ulong)(epoch + 1)));
        var random = new SplitMix64(mixer.NextUInt64());
        var order = new int[count];
        for (int i = 0; i < count; i++)
            order[i] = i;
        for (int i = count - 1; i > 0; i--)
        {
            int j = (int)random.NextBelow((ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
