using FineTune.Trainer.Data;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tests.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// A run on chat data renders it with the tokenizer's own chat_template (here Zephyr's, neither ChatML nor Llama 3)
/// and says so at the start; before, `run` passed no template at all and trained every conversation as ChatML.
/// </summary>
public sealed class RunChatTemplateTests
{
    [Fact]
    public void RunTrainsWithTheTokenizersChatTemplateAndNamesIt()
    {
        using var tiny = new TinyRunRecipe();
        string tokenizerFolder = Path.Combine(tiny.OutputDirectory, "tokenizer");
        Directory.CreateDirectory(tokenizerFolder);
        File.Copy(FixturePaths.Tokenizer("tiny_bpe_tokenizer.json"), Path.Combine(tokenizerFolder, "tokenizer.json"));
        string zephyr = File.ReadAllText(FixturePaths.ChatTemplates("templates/zephyr-7b-beta.jinja"));
        File.WriteAllText(Path.Combine(tokenizerFolder, "tokenizer_config.json"),
            System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["eos_token"] = "<|endoftext|>", ["chat_template"] = zephyr }));
        string[] overrides =
        [
            "tokenizer.kind=hf", $"tokenizer.path={tokenizerFolder}", "dataset.format=chat", $"dataset.path={FixturePaths.Data("chat_tiny.json")}",
            "dataset.seq_len=96", "model.config.vocab_size=2003", "model.config.max_position_embeddings=96", "training.max_steps=2",
            "schedule.warmup_steps=0",
        ];

        RunSetup setup = RunSetup.Create(tiny.Load(overrides));
        Assert.NotNull(setup.Chat);
        Assert.Contains("chat_template rendered as Jinja (Zephyr/Phi-3 style)", setup.Chat.Reason);
        TokenizedSample sample = setup.TrainData.Samples[0];
        Assert.StartsWith("<|system|>\nYou are an AI assistant.<|endoftext|>\n<|user|>\n", setup.Tokenizer.Decode(sample.Ids));
        Assert.Equal("The meaning of life is 42.<|endoftext|>I agree.<|endoftext|>",
            setup.Tokenizer.Decode(sample.Labels.Where(l => l != TokenizedSample.IgnoreIndex).ToArray()));

        var output = new StringWriter();
        new TrainingRun(tiny.Load(overrides), new RunProgress(output, null, 1)).Execute(CancellationToken.None);
        Assert.Contains($"chat template: {setup.Chat.Reason}", output.ToString());
    }
}
