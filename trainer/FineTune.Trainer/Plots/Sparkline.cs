using System.Text;

namespace FineTune.Trainer.Plots;

/// <summary>
/// A curve as one line of block characters (▁▂▃▄▅▆▇█), for the end-of-run summary: the values are averaged into at
/// most <c>width</c> equal buckets of consecutive points, then scaled between their minimum (▁) and maximum (█).
/// Non-finite values are left out of the scale and shown as a space.
/// </summary>
public static class Sparkline
{
    private const string Blocks = "▁▂▃▄▅▆▇█";

    public static string Render(IReadOnlyList<double> values, int width = 40)
    {
        if (values.Count == 0 || width < 1)
            return "";
        int buckets = Math.Min(width, values.Count);
        var means = new double[buckets];
        for (int b = 0; b < buckets; b++)
        {
            int start = (int)((long)b * values.Count / buckets), end = (int)((long)(b + 1) * values.Count / buckets);
            double sum = 0;
            int count = 0;
            for (int i = start; i < end; i++)
            {
                if (double.IsFinite(values[i]))
                {
                    sum += values[i];
                    count++;
                }
            }
            means[b] = count > 0 ? sum / count : double.NaN;
        }
        double[] finite = means.Where(double.IsFinite).ToArray();
        if (finite.Length == 0)
            return new string(' ', buckets);
        double min = finite.Min(), max = finite.Max();
        var line = new StringBuilder(buckets);
        foreach (double m in means)
        {
            if (!double.IsFinite(m))
                line.Append(' ');
            else
                line.Append(Blocks[max > min ? (int)Math.Round((m - min) / (max - min) * (Blocks.Length - 1)) : Blocks.Length / 2]);
        }
        return line.ToString();
    }
}
