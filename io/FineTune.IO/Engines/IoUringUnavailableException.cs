namespace FineTune.IO.Engines;

/// <summary>io_uring_setup or the ring mmap failed (ENOSYS: old kernel; EPERM: seccomp or io_uring_disabled).</summary>
internal sealed class IoUringUnavailableException : Exception
{
    public IoUringUnavailableException(string message) : base(message) { }
}
