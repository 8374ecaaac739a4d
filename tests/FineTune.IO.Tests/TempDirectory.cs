namespace FineTune.IO.Tests;

/// <summary>A scratch directory on the real disk (O_DIRECT needs a block file system), deleted on Dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        string root = Environment.GetEnvironmentVariable("FINETUNE_TEST_DIR") ?? Path.GetTempPath();
        FullPath = Path.Combine(root, "finetune-io-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(FullPath);
    }

    public string FullPath { get; }

    public string File(string name) => Path.Combine(FullPath, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(FullPath, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
