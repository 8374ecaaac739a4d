using FineTune.Offload.Optimizer;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>
/// Where final gradients go as backward makes them, and where the optimizer reads them: <see cref="StreamedGradients"/>
/// keeps each in host memory until its sub-groups are updated (the update overlapped with backward);
/// <see cref="SpilledGradients"/> writes each to NVMe at once and reads it back for an update that waits for the global
/// norm (clipping, loss scaling). Either way no per-parameter accumulator exists.
/// </summary>
public interface IGradientSink : IGradientSource
{
    /// <summary>Highest bytes of gradients held in host memory at once.</summary>
    long PeakOutstandingByteCount { get; }

    /// <summary>Backward has finalised every gradient at or after flat element <paramref name="boundary"/>.</summary>
    void SetBoundary(long boundary);

    /// <summary>Blocks while <paramref name="byteCount"/> more bytes would pass the sink's bound (back-pressure).</summary>
    void WaitForRoom(long byteCount);

    /// <summary>Seconds <see cref="WaitForRoom"/> has blocked so far: backward waiting for the optimizer to catch up.</summary>
    double RoomWaitSeconds { get; }

    /// <summary>Hands over elements [<paramref name="offset"/>, offset + n) of <paramref name="parameter"/>'s final gradient; the sink owns the tensor from now on.</summary>
    void Publish(int parameter, long offset, Tensor gradient);

    /// <summary>
    /// As <see cref="Publish(int, long, Tensor)"/>, with the weights the gradient is of, as backward used them (a view
    /// the caller keeps): a sink that carries weights to the update (<see cref="IGradientSource.PreviousWeights"/>)
    /// copies them; the others ignore them.
    /// </summary>
    void Publish(int parameter, long offset, Tensor gradient, Tensor? weights) => Publish(parameter, offset, gradient);

    /// <summary>After a step's backward (or a failed step): what the step published and the update does not need is let go.</summary>
    void EndStep();
}
