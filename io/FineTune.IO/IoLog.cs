namespace FineTune.IO;

/// <summary>
/// Where FineTune.IO reports one-time warnings (O_DIRECT refused, io_uring unavailable). Defaults to standard
/// error; the trainer may point <see cref="Warn"/> at its own log. Each distinct warning key is reported once per
/// process, so a fallback is announced once, not per file or per request.
/// </summary>
public static class IoLog
{
    private static readonly HashSet<string> s_warnedKeys = new();

    /// <summary>Receives each warning sentence. Replace to redirect; the default writes to standard error.</summary>
    public static Action<string> Warn { get; set; } = message => Console.Error.WriteLine($"warning: {message}");

    /// <summary>Reports <paramref name="message"/> unless a warning with the same key was already reported.</summary>
    internal static void WarnOnce(string key, string message)
    {
        lock (s_warnedKeys)
        {
            if (!s_warnedKeys.Add(key))
                return;
        }
        Warn(message);
    }
}
