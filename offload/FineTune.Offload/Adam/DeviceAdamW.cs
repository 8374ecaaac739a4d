using FineTune.Torch;
using TorchOps = FineTune.Torch.Torch;

namespace FineTune.Offload.Adam;

/// <summary>
/// AdamW for the sub-groups the interleave planner assigns to the device, written with our libtorch ops (same
/// math and step scalars as the CPU kernel, PyTorch's _single_tensor_adamw, without FMA: results agree with the
/// CPU kernel to float rounding, not bit for bit). Per segment of a sub-group: the states (zero-copy views of the
/// pinned pool buffer) and the gradients go to the device on a side stream, the update runs on the compute stream
/// after an event, the states and the low-precision weights come back on the side stream, and the call returns
/// once they are in host memory (so the caller may write the buffer to NVMe).
/// On a CPU device the same code runs on CPU tensors that alias the host buffers: no copies, no streams. This is
/// how it is tested here; the CUDA path (streams, events, non-blocking copies) needs a GPU machine to exercise.
/// </summary>
public sealed class DeviceAdamW : IDisposable
{
    private readonly CudaStream? _copyStream;

    public DeviceAdamW(Device device)
    {
        Device = device;
        if (device.IsCuda)
            _copyStream = CudaStream.Create(device.Index);
    }

    public Device Device { get; }

    /// <summary>Runs the update over every segment (pointers as in <see cref="CpuAdamW"/>).</summary>
    public void Update(in AdamWStepScalars s, IReadOnlyList<AdamWSegment> segments)
    {
        foreach (AdamWSegment segment in segments)
            UpdateSegment(s, segment);
    }

    private void UpdateSegment(in AdamWStepScalars s, AdamWSegment seg)
    {
        using var scope = TensorScope.Enter();
        using IDisposable noGrad = TorchOps.NoGrad();
        long[] shape = { seg.ElementCount };
        Tensor masterHost = TorchOps.FromPointer(seg.Master, shape, DType.Float32);
        Tensor mHost = TorchOps.FromPointer(seg.FirstMoment, shape, DType.Float32);
        Tensor vHost = TorchOps.FromPointer(seg.SecondMoment, shape, DType.Float32);
        Tensor gradientHost = TorchOps.FromPointer(seg.Gradient, shape, ToDType(seg.GradientType));
        Tensor weightHost = TorchOps.FromPointer(seg.Weight, shape, ToDType(seg.WeightType));

        Tensor master, m, v, gradient;
        if (_copyStream is null)
        {
            (master, m, v, gradient) = (masterHost, mHost, vHost, gradientHost);
        }
        else
        {
            using (_copyStream.MakeCurrent())
            {
                master = masterHost.To(Device, DType.Float32, nonBlocking: true);
                m = mHost.To(Device, DType.Float32, nonBlocking: true);
                v = vHost.To(Device, DType.Float32, nonBlocking: true);
                gradient = gradientHost.To(Device, seg.GradientType == ElementType.Float32 ? DType.Float32 : DType.BFloat16, nonBlocking: true);
            }
            using var copied = new CudaEvent(enableTiming: false);
            copied.Record(_copyStream);
            copied.Wait(CudaStream.Current(Device.Index));
        }

        // reference: torch/optim/adamw.py, _single_tensor_adamw; scalars rounded to float as PyTorch does.
        // The same in-place op sequence as PyTorch's; g is a new tensor (never the caller's gradient, which
        // To(Float32) may alias on the CPU).
        Tensor g = gradient.To(DType.Float32) * s.GradientMultiplier;
        master.MulInPlace(s.Decay);
        m.MulInPlace(s.Beta1).AddInPlace(g, s.OneMinusBeta1);
        v.MulInPlace(s.Beta2).AddcmulInPlace(g, g, s.OneMinusBeta2);
        Tensor denom = v.Sqrt() / s.BiasCorrection2Sqrt + s.Epsilon;
        master.AddcdivInPlace(m, denom, s.NegativeStepSize);

        if (_copyStream is null)
        {
            weightHost.CopyFrom(master);
            return;
        }
        using var updated = new CudaEvent(enableTiming: false);
        updated.Record(CudaStream.Current(Device.Index));
        updated.Wait(_copyStream);
        using (_copyStream.MakeCurrent())
        {
            masterHost.CopyFrom(master, nonBlocking: true);
            mHost.CopyFrom(m, nonBlocking: true);
            vHost.CopyFrom(v, nonBlocking: true);
            weightHost.CopyFrom(master, nonBlocking: true);
        }
        // The host buffer is handed to NVMe next: it must hold the new states before this returns.
        _copyStream.Synchronize();
    }

    private static DType ToDType(ElementType type) => type switch
    {
        ElementType.Float32 => DType.Float32,
        ElementType.BFloat16 => DType.BFloat16,
        _ => DType.Float16,
    };

    public void Dispose() => _copyStream?.Dispose();
}
