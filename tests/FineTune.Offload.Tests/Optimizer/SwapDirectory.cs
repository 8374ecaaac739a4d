namespace FineTune.Offload.Tests.Optimizer;

/// <summary>
/// A scratch directory for NVMe tests: .swap/&lt;guid&gt; under the repository root (a real disk, unlike a tmpfs
/// /tmp, so O_DIRECT is exercised), else under the temp directory. Deleted on Dispose.
/// </summary>
internal sealed class SwapDirectory : IDisposable
{
    public SwapDirectory()
    {
        string? root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(System.IO.Path.Combine(root, "FineTune.sln")))
            root = System.IO.Path.GetDirectoryName(root);
        Path = System.IO.Path.Combine(root is null ? System.IO.Path.GetTempPath() : System.IO.Path.Combine(root, ".swap"), Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
