namespace FineTune.Trainer.Tests.Recipes;

/// <summary>Temporary folders and the repository root for recipe tests.</summary>
internal sealed class RecipeTestFiles : IDisposable
{
    public RecipeTestFiles()
    {
        Root = Path.Combine(Path.GetTempPath(), "ft-recipe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>A model folder with a config.json of the given Llama shape (and an empty tokenizer.json).</summary>
    public string ModelFolder(string name, int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int positions, bool tied)
    {
        string folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        System.IO.File.WriteAllText(Path.Combine(folder, "config.json"),
            $$"""{"model_type": "llama", "vocab_size": {{vocab}}, "hidden_size": {{hidden}}, "intermediate_size": {{intermediate}}, "num_hidden_layers": {{layers}}, "num_attention_heads": {{heads}}, "num_key_value_heads": {{kvHeads}}, "max_position_embeddings": {{positions}}, "tie_word_embeddings": {{(tied ? "true" : "false")}}}""");
        System.IO.File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{}");
        return folder;
    }

    public string File(string name, string text)
    {
        string path = Path.Combine(Root, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    /// <summary>The folder holding FineTune.sln (tests run from bin/Release/net10.0 inside it).</summary>
    public static string RepositoryRoot()
    {
        for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
            if (System.IO.File.Exists(Path.Combine(dir, "FineTune.sln")))
                return dir;
        throw new InvalidOperationException("FineTune.sln not found above " + AppContext.BaseDirectory);
    }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, recursive: true);
    }
}
