using FineTune.IO;

namespace FineTune.Offload.Storage;

/// <summary>
/// The drives of one training engine: one <see cref="NvmeDevice"/> per directory, created on first use and shared by
/// every store placed on that directory, so a run has one read and one write queue per drive however many stores use
/// it. Disposed after the stores (by the engine that owns it).
/// </summary>
public sealed class NvmeDeviceSet : IDisposable
{
    private readonly Dictionary<string, NvmeDevice> _devices = new(StringComparer.Ordinal);
    private readonly IoEngineKind _engineKind;
    private readonly int _queueDepth;

    public NvmeDeviceSet(IoEngineKind engineKind = IoEngineKind.Auto, int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        _engineKind = engineKind;
        _queueDepth = queueDepth;
    }

    /// <summary>Devices opened so far (one per directory).</summary>
    public IReadOnlyCollection<NvmeDevice> Devices => _devices.Values;

    /// <summary>The device of <paramref name="directory"/>, opened now if it is the first store there; user errors as <see cref="NvmeDevice.Open"/>.</summary>
    public NvmeDevice For(string? directory, string purpose)
    {
        string key = directory is null || !Directory.Exists(directory) ? directory ?? "" : Path.GetFullPath(directory);
        if (_devices.TryGetValue(key, out NvmeDevice? device))
            return device;
        device = NvmeDevice.Open(directory, purpose, _engineKind, _queueDepth);
        _devices[device.Directory] = device;
        return device;
    }

    public void Dispose()
    {
        foreach (NvmeDevice device in _devices.Values)
            device.Dispose();
        _devices.Clear();
    }
}
