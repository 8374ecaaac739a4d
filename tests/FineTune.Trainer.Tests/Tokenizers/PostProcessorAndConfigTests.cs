using System.Text.Json.Nodes;
using FineTune.Trainer.Data;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Tokenizers;

/// <summary>
/// The Llama 3 post-processor (Sequence[ByteLevel, TemplateProcessing "&lt;|begin_of_text|&gt; $A"]) and the special
/// ids and chat format read from tokenizer_config.json, on a copy of the Llama-3-style fixture with added tokens.
/// </summary>
public sealed class PostProcessorAndConfigTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("finetune-llama3-").FullName;

    public PostProcessorAndConfigTests()
    {
        JsonNode root = JsonNode.Parse(File.ReadAllText(FixturePaths.Tokenizer("tokenizer.json")))!;
        var added = new JsonArray();
        string[] names = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];
        for (int i = 0; i < names.Length; i++)
            added.Add(new JsonObject { ["id"] = 2000 + i, ["content"] = names[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        root["added_tokens"] = added;
        root["post_processor"] = JsonNode.Parse("""
            {"type": "Sequence", "processors": [
              {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
              {"type": "TemplateProcessing",
               "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
               "pair": [], "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [2000], "tokens": ["<|begin_of_text|>"]}}}]}
            """);
        File.WriteAllText(Path.Combine(_folder, "tokenizer.json"), root.ToJsonString());
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void TemplateProcessingAddsBosAndNamesFallBackToKnownTokens()
    {
        ITokenizer tokenizer = TokenizerLoader.Load(_folder);
        // 73 503 654 = "I can see" in the fixture README's example.
        Assert.Equal([2000, 73, 503, 654], tokenizer.Encode("I can see", addSpecialTokens: true));
        Assert.Equal([2000], tokenizer.PrefixIds);
        Assert.Equal((2000, 2001, (int?)null), (tokenizer.BosId, tokenizer.EosId, tokenizer.PadId));
        Assert.Same(ChatTemplate.ChatMl, ChatTemplateChoice.Detect(_folder).Template); // no tokenizer_config.json
    }

    [Fact]
    public void TokenizerConfigNamesSpecialTokensAndChatTemplate()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """
            {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>"}, "pad_token": "<|end_of_text|>",
             "chat_template": "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"}
            """);
        ITokenizer tokenizer = TokenizerLoader.Load(Path.Combine(_folder, "tokenizer.json"));
        Assert.Equal((2000, 2004, (int?)2001), (tokenizer.BosId, tokenizer.EosId, tokenizer.PadId));
        ChatTemplateChoice choice = ChatTemplateChoice.Detect(_folder);
        Assert.Contains("Llama 3 style", choice.Reason);

        // The Llama 3 chat format: BOS written by the template (bos_token), header and eot ids are added tokens.
        TokenizedSample sample = new ChatFormatter(tokenizer, choice.Template).Format([new("user", "hi"), new("assistant", "I can see")]);
        int userEnd = Array.IndexOf(sample.Ids, 2004);
        Assert.Equal([2000, 2002], sample.Ids[..2]);
        Assert.Equal([2002], sample.Ids[(userEnd + 1)..(userEnd + 2)]);
        int firstTrained = Array.FindIndex(sample.Labels, l => l != TokenizedSample.IgnoreIndex);
        Assert.Equal([73, 503, 654, 2004], sample.Ids[firstTrained..]);
        Assert.Equal([73, 503, 654, 2004], sample.Labels[firstTrained..]);
    }

    [Fact]
    public void ChatTemplateJinjaFileWinsOverTokenizerConfig()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """{"chat_template": "{{ 'config' }}"}""");
        File.WriteAllText(Path.Combine(_folder, "chat_template.json"), """{"chat_template": "{{ 'json file' }}"}""");
        Assert.Equal("json file", ChatTemplateChoice.Detect(_folder).Template.Render([], false, new ByteTokenizer()));
        File.WriteAllText(Path.Combine(_folder, "chat_template.jinja"), "{{ 'jinja file' }}\n");
        ChatTemplateChoice choice = ChatTemplateChoice.Detect(_folder);
        Assert.Equal("jinja file", choice.Template.Render([], false, new ByteTokenizer()));
        Assert.StartsWith(Path.Combine(_folder, "chat_template.jinja"), choice.Reason);
    }

    [Theory]
    [InlineData("LlamaTokenizerFast", new[] { 2000, 73, 2001 })]      // flags win: BOS and EOS
    [InlineData("PreTrainedTokenizerFast", new[] { 2000, 73 })]       // flags ignored: tokenizer.json's template
    public void LlamaTokenizerClassAppliesAddBosAndAddEos(string tokenizerClass, int[] expected)
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"),
            $$"""{"tokenizer_class": "{{tokenizerClass}}", "add_bos_token": true, "add_eos_token": true, "eos_token": "<|end_of_text|>"}""");
        Assert.Equal(expected, TokenizerLoader.Load(_folder).Encode("I", addSpecialTokens: true));
    }

    [Fact]
    public void ConfigNamingAnUnknownTokenIsAUserError()
    {
        string config = Path.Combine(_folder, "tokenizer_config.json");
        File.WriteAllText(config, """{"eos_token": "<nope>"}""");
        var e = Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(_folder));
        Assert.Contains(config, e.Message);
        Assert.Contains("<nope>", e.Message);
    }
}
