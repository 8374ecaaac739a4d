using FineTune.Trainer.Data;
using FineTune.Trainer.Tests.Tokenizers;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

/// <summary>
/// Exactly the prompt / non-assistant tokens carry -100. Expected ids and boundaries for the Qwen2-style tiny_bpe
/// tokenizer come from Fixtures/tokenizers/reference_bpe.py (see the comments for the Python that produced them).
/// </summary>
public sealed class MaskingTests
{
    private static readonly ITokenizer s_tiny = TokenizerLoader.Load(FixturePaths.Tokenizer("tiny_bpe_tokenizer.json"));

    [Fact]
    public void AlpacaPromptIsMaskedUpToTheExactBoundary()
    {
        // First record of alpaca_tiny.json (empty input). reference_bpe.encode of the prompt_no_input text gives 61 ids
        // starting 33 214 174 156 194; the output gives 65 ids starting 16 13 36 106 98; then EOS <|endoftext|> = 2000.
        List<DataRecord> records = DataFileReader.ReadFile(FixturePaths.Data("alpaca_tiny.json"), DataFormat.Auto);
        Assert.Equal(DataFormat.Alpaca, records[0].Format);
        TokenizedSample sample = new InstructionFormatter(s_tiny, InstructionTemplate.Alpaca).Format(records[0].Instruction!);
        const int promptCount = 61, outputCount = 65;
        Assert.Equal(promptCount + outputCount + 1, sample.Ids.Length);
        Assert.Equal([33, 214, 174, 156, 194], sample.Ids[..5]);
        Assert.Equal([16, 13, 36, 106, 98], sample.Ids[promptCount..(promptCount + 5)]);
        Assert.Equal(2000, sample.Ids[^1]);
        Assert.All(sample.Labels[..promptCount], l => Assert.Equal(TokenizedSample.IgnoreIndex, l));
        Assert.Equal(sample.Ids[promptCount..], sample.Labels[promptCount..]);

        // In a batch, labels are shifted: position promptCount - 1 (the prompt's last token) predicts the first output id.
        var dataset = new TokenizedDataset([sample], new DatasetStatistics(1, 1, sample.Ids.Length, outputCount + 1, 0, 0, 0));
        Batch batch = new DataLoader(dataset, new DataLoaderOptions(1, 160, Shuffle: false, PadId: 2000)).Next();
        ReadOnlySpan<long> labels = batch.LabelRow(0);
        Assert.Equal(promptCount - 1, labels.IndexOfAnyExcept(TokenizedSample.IgnoreIndex));
        Assert.Equal(16, labels[promptCount - 1]);
        Assert.Equal(2000, labels[promptCount + outputCount - 1]); // the last target is EOS
        Assert.Equal(TokenizedSample.IgnoreIndex, labels[promptCount + outputCount]); // then padding
        Assert.Equal(outputCount + 1, batch.TokenCount);
    }

    [Fact]
    public void ShareGptConversationTrainsOnAssistantTurnsOnly()
    {
        // chat_tiny.json in ChatML; reference_bpe.encode of each piece ("<|im_start|>{role}\n", content + "<|im_end|>",
        // "\n"), with content trained only for the assistant. Encoding the whole string gives the same 70 ids.
        int[] expectedIds = [2001, 82, 88, 479, 94, 56, 119, 230, 194, 627, 1318, 249, 13, 2002, 94, 2001, 273, 105, 94, 1221, 156, 103, 1507, 131, 832, 30, 2002, 94, 2001, 397, 251, 249, 94, 298, 1507, 131, 832, 156, 95, 19, 17, 13, 2002, 94, 2001, 273, 105, 94, 51, 760, 300, 313, 175, 140, 196, 384, 13, 2002, 94, 2001, 397, 251, 249, 94, 40, 871, 505, 13, 2002, 94];
        List<DataRecord> records = DataFileReader.ReadFile(FixturePaths.Data("chat_tiny.json"), DataFormat.Auto);
        TokenizedSample sample = new ChatFormatter(s_tiny, ChatTemplate.ChatMl).Format(records[0].Messages!);
        Assert.Equal(expectedIds, sample.Ids);
        Assert.Equal(expectedIds, s_tiny.Encode(string.Concat(new ChatFormatter(s_tiny, ChatTemplate.ChatMl).Pieces(records[0].Messages!).Select(p => p.Text))));
        for (int i = 0; i < sample.Ids.Length; i++)
        {
            bool trained = i is >= 33 and <= 42 or >= 64 and <= 68; // "The meaning of life is 42.<|im_end|>", "I agree.<|im_end|>"
            Assert.Equal(trained ? sample.Ids[i] : TokenizedSample.IgnoreIndex, sample.Labels[i]);
        }
        Assert.Equal("The meaning of life is 42.<|im_end|>I agree.<|im_end|>",
            s_tiny.Decode(sample.Labels.Where(l => l != TokenizedSample.IgnoreIndex).ToArray()));
    }

    [Fact]
    public void OpenAiMessagesEqualShareGpt()
    {
        string folder = Directory.CreateTempSubdirectory("finetune-chat-").FullName;
        try
        {
            string path = Path.Combine(folder, "chat.jsonl");
            File.WriteAllText(path, """
                {"messages": [{"role": "system", "content": "You are an AI assistant."}, {"role": "user", "content": "What is the meaning of life?"}, {"role": "assistant", "content": "The meaning of life is 42."}, {"role": "user", "content": "That's ridiculous."}, {"role": "assistant", "content": "I agree."}]}
                """);
            var formatter = new ChatFormatter(s_tiny, ChatTemplate.ChatMl);
            TokenizedSample openAi = formatter.Format(DataFileReader.ReadFile(path, DataFormat.Auto)[0].Messages!);
            TokenizedSample shareGpt = formatter.Format(DataFileReader.ReadFile(FixturePaths.Data("chat_tiny.json"), DataFormat.Chat)[0].Messages!);
            Assert.Equal(shareGpt.Ids, openAi.Ids);
            Assert.Equal(shareGpt.Labels, openAi.Labels);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Meta-Llama-3-8B-Instruct's chat_template: bos_token on the first turn, content trimmed.</summary>
    internal const string Llama3Template =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}" +
        "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    [Fact]
    public void Llama3FormatWithByteTokenizer()
    {
        var tokenizer = new ByteTokenizer();
        ChatMessage[] messages = [new("user", "hi"), new("assistant", " yo ")];
        TokenizedSample sample = new ChatFormatter(tokenizer, ChatTemplate.Parse(Llama3Template, "llama 3")).Format(messages);
        const string prompt = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        Assert.Equal(ByteTokenizer.Bos, sample.Ids[0]);
        Assert.Equal("<bos>" + prompt + "yo<|eot_id|>", tokenizer.Decode(sample.Ids));
        int boundary = 1 + prompt.Length; // BOS + prompt bytes (all ASCII)
        Assert.Equal(boundary, Array.FindIndex(sample.Labels, l => l != TokenizedSample.IgnoreIndex));
        Assert.Equal("yo<|eot_id|>", tokenizer.Decode(sample.Labels[boundary..]));
    }

    [Fact]
    public void ADeclaredTemplateIsRenderedNotReplacedByChatMl()
    {
        // Before: any template without ChatML or Llama 3 markers trained as ChatML ("neither ChatML nor Llama 3").
        ChatTemplateChoice mistral = ChatTemplateChoice.FromTemplateText(
            "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}", "x");
        var tokenizer = new ByteTokenizer();
        Assert.Equal("<bos>[INST] hi [/INST]yo<eos>", mistral.Template.Render([new("user", "hi"), new("assistant", "yo")], false, tokenizer));
        Assert.Contains("Mistral [INST] style", mistral.Reason);
        Assert.Same(ChatTemplate.ChatMl, ChatTemplateChoice.FromTemplateText(null, "x").Template);
    }

    [Theory]
    [InlineData("{% for m in messages %}{{ m.content | wordwrap(5) }}{% endfor %}", "x: the chat_template uses the filter 'wordwrap' (template line 1), which FineTune's Jinja interpreter does not support;")]
    [InlineData("{% for m in messages %}{{ m.content.format(1) }}{% endfor %}", "x: the chat_template uses the str method 'format' (template line 1), which FineTune's Jinja interpreter does not support;")]
    [InlineData("{% for m in messages %}", "x: the chat_template is not valid Jinja")]
    public void ATemplateThatCannotBeRenderedIsRefusedNamingTheConstruct(string template, string message)
    {
        var e = Assert.Throws<UserErrorException>(() => ChatTemplateChoice.FromTemplateText(template, "x"));
        Assert.StartsWith(message, e.Message);
    }
}
