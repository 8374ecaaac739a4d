namespace FineTune.Trainer.Tests.Models;

/// <summary>
/// Locates the reference fixtures written by tests/reference/make_llama_fixtures.py
/// (tests/FineTune.Trainer.Tests/Fixtures/models/&lt;name&gt;) by walking up from the test binary to the source tree,
/// and makes scratch folders that delete themselves.
/// </summary>
internal static class ModelFixtures
{
    public const string GqaTied = "llama_gqa_tied";
    public const string BiasLlama3 = "llama_bias_llama3";
    public const string BiasLlama3Sharded = "llama_bias_llama3_sharded";
    public const string GqaTiedBf16 = "llama_gqa_tied_bf16";
    public const string GqaTiedF16 = "llama_gqa_tied_f16";
    public const string Qwen2 = "qwen2_tiny";

    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Folder(string name) => Path.Combine(s_root.Value, name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "FineTune.Trainer.Tests", "Fixtures", "models");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/FineTune.Trainer.Tests/Fixtures/models not found above " + AppContext.BaseDirectory);
    }
}
