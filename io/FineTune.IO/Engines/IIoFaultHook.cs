namespace FineTune.IO.Engines;

/// <summary>
/// Test seam inside the engines (installed by <see cref="FaultInjectingIoEngine"/>): shortens what is handed to the
/// kernel, so a genuinely short transfer comes back and the engine's resubmission runs, and rewrites results into
/// transient errors (EAGAIN) so the retry path runs. Null in production.
/// </summary>
internal interface IIoFaultHook
{
    /// <summary>Bytes to submit, at most <paramref name="remainingByteCount"/>, positive, a multiple of 4096.</summary>
    int AdjustSubmissionLength(IoOperation operation, int remainingByteCount);

    /// <summary>The result the engine should see: the kernel's (bytes or -errno) or a replacement such as -EAGAIN.</summary>
    long AdjustResult(IoOperation operation, long result);
}
