using System.Text.Json;
using FineTune.Trainer.Data;
using FineTune.Trainer.Tests.Tokenizers;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

/// <summary>
/// Loss masking under the 11 real chat templates of Fixtures/chat_templates: the trained text of each assistant turn
/// (its content as the template writes it, and the end-of-turn marker, not the whitespace after it), and the whole
/// tokenized sample equal to the Jinja2 rendering in cases.json. Expected spans were read off each template by hand.
/// </summary>
public sealed class ChatTemplateMaskingTests
{
    private static readonly Lazy<List<JsonElement>> s_cases = new(() =>
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(FixturePaths.ChatTemplates("cases.json")));
        return document.RootElement.EnumerateArray().Select(c => c.Clone()).ToList();
    });

    private static readonly ChatMessage[] s_twoTurns = [new("user", "Hi there."), new("assistant", "  Hello!  "), new("user", "Bye."), new("assistant", "Bye!")];

    [Theory]
    [InlineData("nous-hermes-2-mixtral-8x7b-dpo", "  Hello!  <|im_end|>", "Bye!<|im_end|>")]
    [InlineData("smollm2-135m-instruct", "  Hello!  <|im_end|>", "Bye!<|im_end|>")]
    [InlineData("qwen2.5-7b-instruct", "  Hello!  <|im_end|>", "Bye!<|im_end|>")]
    [InlineData("qwen1.5-72b-chat", "  Hello!  <|im_end|>", "Bye!")] // the template ends a final turn with nothing
    [InlineData("llama-3.1-8b-instruct", "Hello!<|eot_id|>", "Bye!<|eot_id|>")] // content | trim
    [InlineData("mistral-7b-instruct-v0.3", " Hello!</s>", " Bye!</s>")] // after "[/INST]" the model writes " " too
    [InlineData("mistral-7b-instruct-v0.1", "   Hello!  </s>", " Bye!</s>")]
    [InlineData("mistral-7b-instruct-v0.2-legacy", "  Hello!  </s>", "Bye!</s>")]
    [InlineData("gemma-2-2b-it", "Hello!<end_of_turn>", "Bye!<end_of_turn>")]
    [InlineData("phi-3-mini-4k-instruct", "  Hello!  <|end|>", "Bye!<|end|>\n<|endoftext|>")] // a final turn trains the closing EOS
    [InlineData("zephyr-7b-beta", "  Hello!  </s>", "Bye!</s>")]
    public void EachAssistantTurnTrainsItsTextAndEndMarker(string template, string first, string second)
    {
        var (formatter, tokenizer) = Formatter(template);
        List<(string Text, bool Trained)> pieces = formatter.Pieces(s_twoTurns);
        Assert.Equal([first, second], pieces.Where(p => p.Trained).Select(p => p.Text));

        // The ids are the pieces' bytes, the labels exactly the trained ones; the whole decodes to the rendering.
        TokenizedSample sample = formatter.Format(s_twoTurns);
        Assert.Equal(string.Concat(pieces.Select(p => p.Text)), tokenizer.Decode(sample.Ids));
        Assert.Equal(first + second, tokenizer.Decode(sample.Labels.Where(l => l != TokenizedSample.IgnoreIndex).ToArray()));
        Assert.Equal(formatter.Template.Render(s_twoTurns, false, tokenizer), string.Concat(pieces.Select(p => p.Text)));
    }

    public static TheoryData<string> TrainableCases()
    {
        var data = new TheoryData<string>();
        foreach (JsonElement c in s_cases.Value.Where(c => !c.GetProperty("add_generation_prompt").GetBoolean()
            && c.GetProperty("tools").ValueKind == JsonValueKind.Null && c.GetProperty("expected_output").ValueKind == JsonValueKind.String))
            data.Add(c.GetProperty("id").GetString()!);
        return data;
    }

    /// <summary>The sample's text is Jinja2's rendering (cases.json) byte for byte, the BOS/EOS the template wrote as their ids.</summary>
    [Theory]
    [MemberData(nameof(TrainableCases))]
    public void TokenizedSampleIsTheJinja2Rendering(string id)
    {
        JsonElement c = s_cases.Value.Single(x => x.GetProperty("id").GetString() == id);
        var (formatter, tokenizer) = Formatter(c.GetProperty("template").GetString()!);
        ChatMessage[] messages = c.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToArray();
        TokenizedSample sample = formatter.Format(messages);
        Assert.Equal(c.GetProperty("expected_output").GetString(), tokenizer.Decode(sample.Ids));
        bool writesBos = c.GetProperty("bos_token").GetString() is string bos && c.GetProperty("expected_output").GetString()!.StartsWith(bos, StringComparison.Ordinal);
        Assert.Equal(writesBos, sample.Ids[0] == ByteTokenizer.Bos); // the template's bos_token is the BOS id, not its letters
        Assert.True(sample.TrainableCount > 0);
    }

    [Fact]
    public void TemplateRefusalNamesTheRecord()
    {
        var (formatter, tokenizer) = Formatter("gemma-2-2b-it");
        var records = new List<DataRecord> { new("data.jsonl:7", null, null, [new("system", "s"), new("user", "u"), new("assistant", "a")]) };
        var e = Assert.Throws<UserErrorException>(() => TokenizedDataset.Build(records, tokenizer, new DatasetOptions(64, Chat: formatter.Template)));
        Assert.Equal("data.jsonl:7: gemma-2-2b-it refuses this conversation: \"System role not supported\"; fix the record or remove it.", e.Message);
    }

    private static (ChatFormatter Formatter, NamedSpecialsTokenizer Tokenizer) Formatter(string template)
    {
        JsonElement c = s_cases.Value.First(x => x.GetProperty("template").GetString() == template);
        var tokenizer = new NamedSpecialsTokenizer(c.GetProperty("bos_token").GetString(), c.GetProperty("eos_token").GetString());
        string source = File.ReadAllText(FixturePaths.ChatTemplates(c.GetProperty("template_file").GetString()!));
        return (new ChatFormatter(tokenizer, ChatTemplate.Parse(source, template)), tokenizer);
    }
}
