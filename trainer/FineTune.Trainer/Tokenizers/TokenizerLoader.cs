using System.Text.Json;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// Opens a tokenizer by name: "byte" is the <see cref="ByteTokenizer"/>; a file is a tokenizer.json; a folder must
/// hold tokenizer.json (a model checkpoint folder). BOS/EOS/PAD come from tokenizer_config.json beside it when that
/// file names them (bos_token, eos_token, pad_token as a string or {"content": ...}); otherwise BOS is the first id
/// the post-processor prepends, and BOS/EOS fall back to well-known names (&lt;s&gt;/&lt;/s&gt;,
/// &lt;|begin_of_text|&gt;/&lt;|end_of_text|&gt;, &lt;|endoftext|&gt;). PAD defaults to none.
/// </summary>
public static class TokenizerLoader
{
    public const string ByteTokenizerName = "byte";
    public const string TokenizerFileName = "tokenizer.json";
    public const string ConfigFileName = "tokenizer_config.json";

    private static readonly string[] s_bosNames = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"];
    private static readonly string[] s_eosNames = ["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"];

    public static ITokenizer Load(string pathOrName)
    {
        if (pathOrName == ByteTokenizerName)
            return new ByteTokenizer();
        string file = ResolveTokenizerFile(pathOrName);
        string? configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, ConfigFileName);
        JsonElement? config = File.Exists(configPath) ? ReadConfig(configPath) : null;
        return TokenizerJsonReader.Read(file, (ids, post) =>
        {
            SpecialTokenIds special = ResolveSpecialIds(ids, post, config, configPath);
            return (special, LlamaStylePostProcessor(post, special, config, configPath));
        });
    }

    /// <summary>The tokenizer.json a path names (the file itself, or tokenizer.json inside a folder).</summary>
    public static string ResolveTokenizerFile(string path)
    {
        if (Directory.Exists(path))
        {
            string inside = Path.Combine(path, TokenizerFileName);
            if (!File.Exists(inside))
                throw new UserErrorException($"{path}: the folder holds no {TokenizerFileName}; point --tokenizer at a tokenizer.json, a folder holding one, or \"byte\".");
            return inside;
        }
        if (!File.Exists(path))
            throw new UserErrorException($"{path}: no such tokenizer file or folder; point --tokenizer at a tokenizer.json, a folder holding one, or \"byte\".");
        return path;
    }

    /// <summary>tokenizer_config.json beside the tokenizer (or inside the folder), or null when there is none.</summary>
    public static string? FindConfigFile(string pathOrName)
    {
        if (pathOrName == ByteTokenizerName)
            return null;
        string folder = Directory.Exists(pathOrName) ? pathOrName : Path.GetDirectoryName(Path.GetFullPath(pathOrName))!;
        string config = Path.Combine(folder, ConfigFileName);
        return File.Exists(config) ? config : null;
    }

    private static JsonElement ReadConfig(string configPath)
    {
        using JsonDocument document = IO.StrictJson.ReadFile(configPath, IO.InputFile.ConfigLimitByteCount, "tokenizer_config.json", "fix or remove the file");
        return document.RootElement.Clone();
    }

    /// <summary>
    /// transformers' LlamaTokenizerFast and GemmaTokenizerFast rebuild the post-processor from tokenizer_config.json's
    /// add_bos_token / add_eos_token (update_post_processor), so for those classes the flags win over tokenizer.json:
    /// BOS first when add_bos_token, EOS last when add_eos_token. Other classes ignore the flags, as transformers does.
    /// </summary>
    private static PostProcessor LlamaStylePostProcessor(PostProcessor post, SpecialTokenIds special, JsonElement? config, string configPath)
    {
        if (config is not JsonElement c || !c.TryGetProperty("tokenizer_class", out JsonElement cls)
            || cls.GetString() is not ("LlamaTokenizer" or "LlamaTokenizerFast" or "GemmaTokenizer" or "GemmaTokenizerFast" or "CodeLlamaTokenizer" or "CodeLlamaTokenizerFast"))
            return post;
        bool? Flag(string key) => c.TryGetProperty(key, out JsonElement v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
        bool addBos = Flag("add_bos_token") ?? post.PrefixIds.Length > 0;
        bool addEos = Flag("add_eos_token") ?? post.SuffixIds.Length > 0;
        int[] prefix = addBos ? [special.Bos ?? throw new UserErrorException($"{configPath}: add_bos_token is true but the tokenizer has no BOS token.")] : [];
        int[] suffix = addEos ? [special.Eos ?? throw new UserErrorException($"{configPath}: add_eos_token is true but the tokenizer has no EOS token.")] : [];
        return new PostProcessor(prefix, suffix);
    }

    private static SpecialTokenIds ResolveSpecialIds(IReadOnlyDictionary<string, int> tokenIds, PostProcessor post,
        JsonElement? config, string configPath)
    {
        int? FromConfig(string key)
        {
            if (config is not JsonElement c || !c.TryGetProperty(key, out JsonElement value))
                return null;
            string? name = value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Object when value.TryGetProperty("content", out JsonElement content) => content.GetString(),
                _ => null,
            };
            if (name is null)
                return null;
            return tokenIds.TryGetValue(name, out int id) ? id
                : throw new UserErrorException($"{configPath}: {key} \"{name}\" is not a token of the tokenizer.");
        }
        int? FirstKnown(string[] names)
        {
            foreach (string name in names)
                if (tokenIds.TryGetValue(name, out int id))
                    return id;
            return null;
        }
        int? bos = FromConfig("bos_token") ?? (post.PrefixIds.Length > 0 ? post.PrefixIds[0] : FirstKnown(s_bosNames));
        int? eos = FromConfig("eos_token") ?? FirstKnown(s_eosNames);
        int? pad = FromConfig("pad_token");
        return new SpecialTokenIds(bos, eos, pad);
    }
}
