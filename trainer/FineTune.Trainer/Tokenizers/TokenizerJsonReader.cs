using System.Text.Json;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// Reads a Hugging Face tokenizer.json (format: FORMATS.md section 3) into an <see cref="HfTokenizer"/>. Every
/// unsupported component (model type, normalizer, pre-tokenizer, post-processor, decoder, BPE option) is rejected
/// with a <see cref="UserErrorException"/> naming the file, the JSON path and the supported alternatives, rather
/// than silently tokenizing differently from the model's training.
/// reference: huggingface/tokenizers tokenizers/src/tokenizer/serialization.rs, models/bpe/serialization.rs.
/// </summary>
internal static class TokenizerJsonReader
{
    /// <summary>Reads the file; <paramref name="resolve"/> picks the special ids and may replace the post-processor
    /// (tokenizer_config.json settings, see <see cref="TokenizerLoader"/>).</summary>
    public static HfTokenizer Read(string path, Func<IReadOnlyDictionary<string, int>, PostProcessor, (SpecialTokenIds, PostProcessor)> resolve)
    {
        JsonDocument document = IO.StrictJson.ReadFile(path, IO.InputFile.TokenizerLimitByteCount, "tokenizer.json", "replace it with the model's tokenizer.json");
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new UserErrorException($"{path}: a tokenizer.json must hold a JSON object at the top level.");
            var addedTokens = ReadAddedTokens(path, root);
            var (model, vocabulary) = ReadModel(path, Get(root, "model", path, "model"));
            var normalizer = ReadNormalizer(path, Optional(root, "normalizer"), "normalizer");
            var preTokenizer = ReadPreTokenizer(path, Optional(root, "pre_tokenizer"), "pre_tokenizer");
            var tokenIds = new Dictionary<string, int>(vocabulary, StringComparer.Ordinal);
            foreach (AddedToken token in addedTokens)
                tokenIds[token.Content] = token.Id;
            var postProcessor = ReadPostProcessor(path, Optional(root, "post_processor"), "post_processor", tokenIds);
            var decoder = ReadDecoder(path, Optional(root, "decoder"), "decoder");
            var (specialIds, finalPostProcessor) = resolve(tokenIds, postProcessor);
            postProcessor = finalPostProcessor;
            return new HfTokenizer(path, addedTokens, normalizer, preTokenizer, model, postProcessor, decoder, specialIds);
        }
    }

    private static List<AddedToken> ReadAddedTokens(string path, JsonElement root)
    {
        var tokens = new List<AddedToken>();
        if (Optional(root, "added_tokens") is not JsonElement array)
            return tokens;
        if (array.ValueKind != JsonValueKind.Array)
            throw new UserErrorException($"{path}: added_tokens must be an array.");
        int index = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            string where = $"added_tokens[{index++}]";
            tokens.Add(new AddedToken(
                GetInt(item, "id", path, where), GetString(item, "content", path, where),
                GetBool(item, "special", false), GetBool(item, "lstrip", false), GetBool(item, "rstrip", false),
                GetBool(item, "single_word", false)));
        }
        return tokens;
    }

    private static (BpeModel Model, Dictionary<string, int> Vocabulary) ReadModel(string path, JsonElement model)
    {
        string type = model.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : model.TryGetProperty("merges", out _) ? "BPE" : "(missing)";
        if (type != "BPE")
            throw new UserErrorException($"{path}: model.type \"{type}\" is not supported; FineTune reads BPE tokenizers (byte-level like GPT-2/Llama-3/Qwen2, or SentencePiece-style like Llama 2).");
        if (Optional(model, "dropout") is JsonElement dropout && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() != 0)
            throw new UserErrorException($"{path}: model.dropout is {dropout.GetDouble()}; BPE dropout is not supported, set it to null.");
        foreach (string option in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (Optional(model, option) is JsonElement value && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0)
                throw new UserErrorException($"{path}: model.{option} \"{value.GetString()}\" is not supported (only GPT-2/Llama-style BPE without word affixes is).");

        JsonElement vocabElement = Get(model, "vocab", path, "model");
        if (vocabElement.ValueKind != JsonValueKind.Object)
            throw new UserErrorException($"{path}: model.vocab must be an object mapping token strings to ids.");
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in vocabElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id))
                throw new UserErrorException($"{path}: model.vocab[\"{entry.Name}\"] must be an integer id.");
            vocabulary[entry.Name] = id;
        }

        var merges = new List<(string, string)>();
        if (Optional(model, "merges") is JsonElement mergeArray)
        {
            int index = 0;
            foreach (JsonElement merge in mergeArray.EnumerateArray())
            {
                if (merge.ValueKind == JsonValueKind.String)
                {
                    // Legacy form "a b" (tokens cannot contain spaces); "#version" lines are comments.
                    string line = merge.GetString()!;
                    if (line.StartsWith("#version", StringComparison.Ordinal))
                    {
                        index++;
                        continue;
                    }
                    string[] parts = line.Split(' ');
                    if (parts.Length != 2)
                        throw new UserErrorException($"{path}: model.merges[{index}] \"{line}\" must be two tokens separated by one space.");
                    merges.Add((parts[0], parts[1]));
                }
                else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                         && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                {
                    merges.Add((merge[0].GetString()!, merge[1].GetString()!));
                }
                else
                {
                    throw new UserErrorException($"{path}: model.merges[{index}] must be a string \"a b\" or an array [\"a\", \"b\"].");
                }
                index++;
            }
        }
        string? unk = Optional(model, "unk_token") is JsonElement u && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
        var bpe = new BpeModel(vocabulary, merges, unk, GetBool(model, "fuse_unk", false),
            GetBool(model, "byte_fallback", false), GetBool(model, "ignore_merges", false), path);
        return (bpe, vocabulary);
    }

    private static TextNormalizer? ReadNormalizer(string path, JsonElement? element, string where)
    {
        if (element is not JsonElement e)
            return null;
        string type = GetString(e, "type", path, where);
        return type switch
        {
            "NFC" => TextNormalizer.Nfc(),
            "Lowercase" => TextNormalizer.Lowercase(),
            "Prepend" => TextNormalizer.Prepend(GetString(e, "prepend", path, where)),
            "Replace" => TextNormalizer.Replace(ReadStringPattern(path, e, where), GetString(e, "content", path, where)),
            "Sequence" => TextNormalizer.Sequence(Get(e, "normalizers", path, where).EnumerateArray()
                .Select((n, i) => ReadNormalizer(path, n, $"{where}.normalizers[{i}]")!)),
            _ => throw new UserErrorException($"{path}: {where} type \"{type}\" is not supported; supported normalizers: NFC, Lowercase, Prepend, Replace, Sequence."),
        };
    }

    private static PreTokenizer ReadPreTokenizer(string path, JsonElement? element, string where)
    {
        if (element is not JsonElement e)
            return PreTokenizer.None();
        string type = GetString(e, "type", path, where);
        switch (type)
        {
            case "Sequence":
                return PreTokenizer.Sequence(Get(e, "pretokenizers", path, where).EnumerateArray()
                    .Select((p, i) => ReadPreTokenizer(path, p, $"{where}.pretokenizers[{i}]")));
            case "ByteLevel":
                return PreTokenizer.ByteLevel(GetBool(e, "add_prefix_space", true), GetBool(e, "use_regex", true));
            case "Digits":
                return PreTokenizer.Digits(GetBool(e, "individual_digits", false));
            case "Metaspace":
                string replacement = Optional(e, "replacement")?.GetString() ?? "\u2581";
                string scheme = Optional(e, "prepend_scheme")?.GetString()
                    ?? (GetBool(e, "add_prefix_space", true) ? "always" : "never");
                if (scheme is not ("always" or "first" or "never"))
                    throw new UserErrorException($"{path}: {where}.prepend_scheme \"{scheme}\" is not one of always, first, never.");
                return PreTokenizer.Metaspace(replacement, scheme, GetBool(e, "split", true));
            case "Split":
                if (GetBool(e, "invert", false))
                    throw new UserErrorException($"{path}: {where} Split with invert:true is not supported.");
                string behavior = GetString(e, "behavior", path, where);
                if (behavior is not ("Isolated" or "Removed"))
                    throw new UserErrorException($"{path}: {where} Split behavior \"{behavior}\" is not supported; supported: Isolated, Removed.");
                JsonElement pattern = Get(e, "pattern", path, where);
                string regex = pattern.TryGetProperty("Regex", out JsonElement r) ? r.GetString()!
                    : System.Text.RegularExpressions.Regex.Escape(GetString(pattern, "String", path, $"{where}.pattern"));
                try
                {
                    return PreTokenizer.SplitByPattern(regex, removeMatches: behavior == "Removed");
                }
                catch (ArgumentException ex)
                {
                    throw new UserErrorException($"{path}: {where}.pattern.Regex cannot be compiled by .NET ({ex.Message}).", ex);
                }
            default:
                throw new UserErrorException($"{path}: {where} type \"{type}\" is not supported; supported pre-tokenizers: Split, ByteLevel, Metaspace, Digits, Sequence.");
        }
    }

    private static PostProcessor ReadPostProcessor(string path, JsonElement? element, string where, Dictionary<string, int> tokenIds)
    {
        if (element is not JsonElement e)
            return PostProcessor.None;
        string type = GetString(e, "type", path, where);
        switch (type)
        {
            case "ByteLevel":
                return PostProcessor.None;
            case "Sequence":
                return PostProcessor.Sequence(Get(e, "processors", path, where).EnumerateArray()
                    .Select((p, i) => ReadPostProcessor(path, p, $"{where}.processors[{i}]", tokenIds)));
            case "BertProcessing":
            case "RobertaProcessing":
                int cls = Get(e, "cls", path, where)[1].GetInt32();
                int sep = Get(e, "sep", path, where)[1].GetInt32();
                return new PostProcessor([cls], [sep]);
            case "TemplateProcessing":
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                JsonElement specials = Get(e, "special_tokens", path, where);
                foreach (JsonElement item in Get(e, "single", path, where).EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _))
                    {
                        seenSequence = true;
                        continue;
                    }
                    string name = GetString(Get(item, "SpecialToken", path, $"{where}.single"), "id", path, $"{where}.single");
                    IEnumerable<int> ids = specials.TryGetProperty(name, out JsonElement special)
                        ? Get(special, "ids", path, $"{where}.special_tokens").EnumerateArray().Select(x => x.GetInt32())
                        : tokenIds.TryGetValue(name, out int id) ? [id]
                        : throw new UserErrorException($"{path}: {where} uses special token \"{name}\", which is neither in special_tokens nor in the vocabulary.");
                    (seenSequence ? suffix : prefix).AddRange(ids);
                }
                return new PostProcessor(prefix.ToArray(), suffix.ToArray());
            default:
                throw new UserErrorException($"{path}: {where} type \"{type}\" is not supported; supported post-processors: TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence.");
        }
    }

    private static TokenDecoder ReadDecoder(string path, JsonElement? element, string where)
    {
        if (element is not JsonElement e)
            return TokenDecoder.None();
        string type = GetString(e, "type", path, where);
        return type switch
        {
            "ByteLevel" => TokenDecoder.ByteLevel(),
            "ByteFallback" => TokenDecoder.ByteFallback(),
            "Fuse" => TokenDecoder.Fuse(),
            "Replace" => TokenDecoder.Replace(ReadStringPattern(path, e, where), GetString(e, "content", path, where)),
            "Strip" => TokenDecoder.Strip(GetString(e, "content", path, where), GetInt(e, "start", path, where), GetInt(e, "stop", path, where)),
            "Metaspace" => TokenDecoder.Metaspace(Optional(e, "replacement")?.GetString() ?? "\u2581",
                (Optional(e, "prepend_scheme")?.GetString() ?? (GetBool(e, "add_prefix_space", true) ? "always" : "never")) != "never"),
            "Sequence" => TokenDecoder.Sequence(Get(e, "decoders", path, where).EnumerateArray()
                .Select((d, i) => ReadDecoder(path, d, $"{where}.decoders[{i}]"))),
            _ => throw new UserErrorException($"{path}: {where} type \"{type}\" is not supported; supported decoders: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence."),
        };
    }

    /// <summary>Replace's pattern must be {"String": "..."}; a regex pattern is not supported.</summary>
    private static string ReadStringPattern(string path, JsonElement e, string where)
    {
        JsonElement pattern = Get(e, "pattern", path, where);
        if (pattern.TryGetProperty("String", out JsonElement s) && s.ValueKind == JsonValueKind.String)
            return s.GetString()!;
        throw new UserErrorException($"{path}: {where}.pattern must be {{\"String\": ...}}; regex Replace patterns are not supported.");
    }

    private static JsonElement? Optional(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement value) && value.ValueKind != JsonValueKind.Null
            ? value : null;

    private static JsonElement Get(JsonElement e, string name, string path, string where) =>
        Optional(e, name) ?? throw new UserErrorException($"{path}: {where} has no \"{name}\"; the tokenizer.json is incomplete.");

    private static string GetString(JsonElement e, string name, string path, string where)
    {
        JsonElement value = Get(e, name, path, where);
        return value.ValueKind == JsonValueKind.String ? value.GetString()!
            : throw new UserErrorException($"{path}: {where}.{name} must be a string.");
    }

    private static int GetInt(JsonElement e, string name, string path, string where)
    {
        JsonElement value = Get(e, name, path, where);
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int result) ? result
            : throw new UserErrorException($"{path}: {where}.{name} must be an integer.");
    }

    private static bool GetBool(JsonElement e, string name, bool defaultValue) =>
        Optional(e, name) is JsonElement value && value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean() : defaultValue;
}
