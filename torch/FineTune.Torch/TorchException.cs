namespace FineTune.Torch;

/// <summary>
/// An error raised inside libtorch (or the FineTune shim), carrying libtorch's own message without its C++
/// backtrace. The native call that failed has been fully unwound; the process keeps working.
/// </summary>
public sealed class TorchException : Exception
{
    public TorchException(string message) : base(message)
    {
    }

    public TorchException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
