namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>Paths of the files under tests/FineTune.Trainer.Tests/Fixtures (see Fixtures/README.md).</summary>
internal static class FixturePaths
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Tokenizer(string name) => Path.Combine(s_root.Value, "tokenizers", name);

    public static string Data(string name) => Path.Combine(s_root.Value, "data", name);

    public static string ChatTemplates(string name) => Path.Combine(s_root.Value, "chat_templates", name);

    public static string Jinja(string name) => Path.Combine(s_root.Value, "jinja", name);

    /// <summary>Walks up from the test binary (bin/Release/net10.0) to the project folder holding Fixtures.</summary>
    private static string FindRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "Fixtures");
            if (Directory.Exists(Path.Combine(candidate, "tokenizers")))
                return candidate;
        }
        throw new DirectoryNotFoundException($"no Fixtures/tokenizers above {AppContext.BaseDirectory}");
    }
}
