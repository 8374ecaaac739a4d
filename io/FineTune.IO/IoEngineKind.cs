namespace FineTune.IO;

/// <summary>Which <see cref="IIoEngine"/> <see cref="IoEngineFactory.Create"/> builds.</summary>
public enum IoEngineKind
{
    /// <summary>io_uring when the kernel allows it, otherwise threads (with one warning).</summary>
    Auto,

    /// <summary>io_uring; fails when unavailable.</summary>
    IoUring,

    /// <summary>pread/pwrite on dedicated threads.</summary>
    Threads,
}
