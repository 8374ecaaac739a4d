using System.Text;
using FineTune.Torch.Native;

namespace FineTune.Torch.Distributed;

/// <summary>
/// c10d's TCPStore: the key-value store ranks rendezvous through. Rank 0 serves it inside its own process
/// (<see cref="Serve"/>) on MASTER_ADDR:MASTER_PORT; every rank, rank 0 included, talks to it as a client. Process
/// groups find their peers through it, and <see cref="ProcessGroup"/> keeps join marks and heartbeats in it.
/// Blocking calls (connecting, <see cref="Get"/>) give up after <see cref="Timeout"/>. Thread-safe (libtorch
/// serialises the requests of one client). When the serving process ends, every client's next call fails.
/// </summary>
public sealed class TcpStore : IDisposable
{
    private readonly OpaqueHandle _handle;

    private TcpStore(IntPtr handle, string host, bool isServer, TimeSpan timeout)
    {
        _handle = new OpaqueHandle(handle, NativeMethods.ft_store_free);
        Host = host;
        IsServer = isServer;
        Timeout = timeout;
    }

    public string Host { get; }

    /// <summary>The port served or reached (the kernel's pick when <see cref="Serve"/> was given 0).</summary>
    public unsafe int Port
    {
        get
        {
            int port;
            NativeMethods.Check(NativeMethods.ft_store_port(Handle, &port));
            return port;
        }
    }

    public bool IsServer { get; }

    public TimeSpan Timeout { get; }

    internal IntPtr Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    /// <summary>Serves the store on host:port (0: any free port, see <see cref="Port"/>) for worldSize ranks.</summary>
    public static TcpStore Serve(string host, int port, int worldSize, TimeSpan timeout) => Open(host, port, true, worldSize, timeout);

    /// <summary>Connects to the store rank 0 serves, retrying until <paramref name="timeout"/> while it starts.</summary>
    public static TcpStore Connect(string host, int port, int worldSize, TimeSpan timeout) => Open(host, port, false, worldSize, timeout);

    private static unsafe TcpStore Open(string host, int port, bool isServer, int worldSize, TimeSpan timeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        IntPtr handle;
        NativeMethods.Check(NativeMethods.ft_store_tcp_new(host, port, isServer ? 1 : 0, worldSize, TimeoutMilliseconds(timeout), &handle));
        return new TcpStore(handle, host, isServer, timeout);
    }

    public unsafe void Set(string key, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
        {
            NativeMethods.Check(NativeMethods.ft_store_set(Handle, key, p, value.Length));
        }
    }

    public void Set(string key, string value) => Set(key, Encoding.UTF8.GetBytes(value));

    /// <summary>The value of <paramref name="key"/>, waiting up to <see cref="Timeout"/> for some rank to set it.</summary>
    public unsafe byte[] Get(string key)
    {
        long length;
        NativeMethods.Check(NativeMethods.ft_store_get(Handle, key, null, 0, &length));
        // The value cannot change size between the two reads: FineTune never sets a key twice with different lengths,
        // and a longer value would only be cut, never overrun the buffer.
        var value = new byte[length];
        fixed (byte* p = value)
        {
            NativeMethods.Check(NativeMethods.ft_store_get(Handle, key, p, value.Length, &length));
        }
        return value;
    }

    public string GetString(string key) => Encoding.UTF8.GetString(Get(key));

    /// <summary>Adds <paramref name="delta"/> to the counter at <paramref name="key"/> (created at 0) and returns the new value.</summary>
    public unsafe long Add(string key, long delta)
    {
        long value;
        NativeMethods.Check(NativeMethods.ft_store_add(Handle, key, delta, &value));
        return value;
    }

    /// <summary>Whether <paramref name="key"/> is set, without waiting.</summary>
    public unsafe bool Contains(string key)
    {
        int exists;
        NativeMethods.Check(NativeMethods.ft_store_check(Handle, key, &exists));
        return exists != 0;
    }

    public void Dispose() => _handle.Dispose();

    internal static long TimeoutMilliseconds(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "a distributed timeout must be positive");
        return (long)Math.Ceiling(timeout.TotalMilliseconds);
    }
}
