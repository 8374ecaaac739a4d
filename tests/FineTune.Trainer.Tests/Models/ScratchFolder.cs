namespace FineTune.Trainer.Tests.Models;

/// <summary>A temporary folder removed on Dispose.</summary>
internal sealed class ScratchFolder : IDisposable
{
    public ScratchFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "finetune-model-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>Copies every file of <paramref name="source"/> (not its subfolders) into a new scratch folder.</summary>
    public static ScratchFolder CopyOf(string source)
    {
        var scratch = new ScratchFolder();
        foreach (string file in Directory.GetFiles(source))
            File.Copy(file, System.IO.Path.Combine(scratch.Path, System.IO.Path.GetFileName(file)));
        return scratch;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
