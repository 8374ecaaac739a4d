using System.Globalization;

namespace FineTune.Torch;

/// <summary>A compute device: the CPU, or CUDA device N. Written and parsed as "cpu" / "cuda:N" (PyTorch's spelling).</summary>
public readonly record struct Device(DeviceType Type, int Index)
{
    public static Device Cpu { get; } = new(DeviceType.Cpu, 0);

    public static Device Cuda(int index = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new Device(DeviceType.Cuda, index);
    }

    public bool IsCpu => Type == DeviceType.Cpu;

    public bool IsCuda => Type == DeviceType.Cuda;

    /// <summary>Parses "cpu", "cuda" (device 0) or "cuda:N"; anything else is an <see cref="ArgumentException"/>.</summary>
    public static Device Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.Trim().ToLowerInvariant();
        if (value == "cpu")
        {
            return Cpu;
        }
        if (value == "cuda")
        {
            return Cuda(0);
        }
        if (value.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(value.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            return Cuda(index);
        }
        throw new ArgumentException($"'{text}' is not a device; write cpu, cuda or cuda:N.", nameof(text));
    }

    public override string ToString() => IsCpu ? "cpu" : $"cuda:{Index}";
}
