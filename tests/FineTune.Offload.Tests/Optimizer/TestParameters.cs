using System.Runtime.InteropServices;
using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;

namespace FineTune.Offload.Tests.Optimizer;

/// <summary>Named parameters in native memory (weights and gradients), as a training loop would hand them over.</summary>
internal sealed unsafe class TestParameters : IDisposable
{
    private readonly List<nint> _allocations = new();

    public TestParameters(IReadOnlyList<long> elementCounts, ElementType weightType, ElementType gradientType, float[] initial)
    {
        long offset = 0;
        var list = new List<HostParameter>();
        for (int i = 0; i < elementCounts.Count; i++)
        {
            long n = elementCounts[i];
            nint weight = Allocate(n * weightType.ByteCount());
            nint gradient = Allocate(n * gradientType.ByteCount());
            nint master = Allocate(n * 4);
            for (long j = 0; j < n; j++)
            {
                float value = initial[offset + j];
                ((float*)master)[j] = value;
                WriteElement(weight, weightType, j, value);
            }
            list.Add(new HostParameter($"layers.{i}.weight", n, weight, weightType, gradient, gradientType) { InitialMaster = master });
            offset += n;
        }
        Parameters = list;
        ElementCount = offset;
    }

    public IReadOnlyList<HostParameter> Parameters { get; }

    public long ElementCount { get; }

    /// <summary>Writes the flat gradient vector into the parameters' gradient buffers (rounding to bf16 if needed).</summary>
    public void SetGradients(float[] flat)
    {
        long offset = 0;
        foreach (HostParameter p in Parameters)
        {
            for (long j = 0; j < p.ElementCount; j++)
                WriteElement(p.Gradient, p.GradientType, j, flat[offset + j]);
            offset += p.ElementCount;
        }
    }

    /// <summary>The low-precision weights as raw bits, flat (for bit-exact comparisons).</summary>
    public byte[] WeightBytes()
    {
        var bytes = new List<byte>();
        foreach (HostParameter p in Parameters)
            bytes.AddRange(new ReadOnlySpan<byte>((void*)p.Weight, (int)(p.ElementCount * p.WeightType.ByteCount())).ToArray());
        return bytes.ToArray();
    }

    /// <summary>Overwrites the low-precision weights with <paramref name="bytes"/> (<see cref="WeightBytes"/>' layout): a model loaded from a checkpoint.</summary>
    public void SetWeightBytes(byte[] bytes)
    {
        int at = 0;
        foreach (HostParameter p in Parameters)
        {
            int length = (int)(p.ElementCount * p.WeightType.ByteCount());
            bytes.AsSpan(at, length).CopyTo(new Span<byte>((void*)p.Weight, length));
            at += length;
        }
    }

    /// <summary>The weights as floats, flat.</summary>
    public float[] Weights()
    {
        var values = new List<float>();
        foreach (HostParameter p in Parameters)
            for (long j = 0; j < p.ElementCount; j++)
                values.Add(p.WeightType switch
                {
                    ElementType.Float32 => ((float*)p.Weight)[j],
                    ElementType.BFloat16 => LowPrecision.FromBFloat16(((ushort*)p.Weight)[j]),
                    _ => (float)BitConverter.UInt16BitsToHalf(((ushort*)p.Weight)[j]),
                });
        return values.ToArray();
    }

    private static void WriteElement(nint buffer, ElementType type, long index, float value)
    {
        switch (type)
        {
            case ElementType.Float32: ((float*)buffer)[index] = value; break;
            case ElementType.BFloat16: ((ushort*)buffer)[index] = LowPrecision.ToBFloat16(value); break;
            default: ((ushort*)buffer)[index] = BitConverter.HalfToUInt16Bits((Half)value); break;
        }
    }

    private nint Allocate(long byteCount)
    {
        nint pointer = (nint)NativeMemory.AllocZeroed((nuint)byteCount);
        _allocations.Add(pointer);
        return pointer;
    }

    public void Dispose()
    {
        foreach (nint pointer in _allocations)
            NativeMemory.Free((void*)pointer);
        _allocations.Clear();
    }
}
