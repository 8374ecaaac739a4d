using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Cli.Tests.Recipes;

/// <summary>
/// Issue 22: the commands in a shipped recipe's header must work as written on a fresh clone (the quickstart's
/// `resume runs/quickstart` and `run ... output_dir=runs/longer` did not). Every `#   ./finetune ...` line of every
/// recipe is run, in file order, from a scratch folder holding only recipes/ (a fresh clone's view). Three
/// concessions keep it to seconds, applied the same way to every command: step counts are divided by 100
/// (at least 2; a run without max_steps gets 2), the greedy task-accuracy decode before and after a run (seconds
/// each) is off, and the placeholders MODEL_DIR and DATA_FILE of the recipes that
/// need a downloaded model are a tiny model trained here and a fixture file, at seq_len 64, one micro-batch of 2,
/// and on the CPU when the recipe asks for cuda and there is none.
/// </summary>
public sealed partial class RecipeHeaderCommandTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("ft-clone-").FullName;
    private readonly ITestOutputHelper _log;

    public RecipeHeaderCommandTests(ITestOutputHelper log) => _log = log;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [GeneratedRegex(@"^#\s+\./finetune\s+(?<args>.+?)(\s{2,}\(.*\))?\s*$")]
    private static partial Regex HeaderCommand();

    [GeneratedRegex(@"^training\.max_steps=(?<n>\d+)$")]
    private static partial Regex MaxSteps();

    [Fact]
    public void EveryHeaderCommandOfEveryRecipeWorksAsWritten()
    {
        string root = CliRunner.RepositoryRoot();
        Directory.CreateDirectory(Path.Combine(_scratch, "recipes"));
        foreach (string recipe in Directory.GetFiles(Path.Combine(root, "recipes"), "*.yaml"))
            File.Copy(recipe, Path.Combine(_scratch, "recipes", Path.GetFileName(recipe)));
        string fixtures = Path.Combine(root, "tests", "FineTune.Trainer.Tests", "Fixtures");
        string modelDirectory = TinyModel(Path.Combine(fixtures, "tokenizers", "tiny_bpe_tokenizer.json"));

        int commandCount = 0;
        foreach (string recipe in Directory.GetFiles(Path.Combine(_scratch, "recipes"), "*.yaml").Order(StringComparer.Ordinal))
        {
            string text = File.ReadAllText(recipe);
            string header = text[..text.IndexOf("\nmodel:", StringComparison.Ordinal)];
            bool cuda = Regex.IsMatch(text, @"^\s+device: cuda", RegexOptions.Multiline);
            string data = Path.Combine(fixtures, "data", text.Contains("format: chat", StringComparison.Ordinal) ? "chat_tiny.json" : "alpaca_tiny.json");
            var commands = header.Split('\n').Select(l => HeaderCommand().Match(l)).Where(m => m.Success).Select(m => m.Groups["args"].Value).ToList();
            Assert.True(commands.Count >= 2, $"{Path.GetFileName(recipe)}: its header shows {commands.Count} ./finetune command(s)");
            foreach (string command in commands)
            {
                bool placeholders = command.Contains("MODEL_DIR", StringComparison.Ordinal);
                var args = command.Replace("MODEL_DIR", modelDirectory).Replace("DATA_FILE", data).Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
                Assert.DoesNotContain(args, a => a.Contains("...", StringComparison.Ordinal));
                if (args[0] is "run" or "resume")
                {
                    int given = args.FindIndex(a => MaxSteps().IsMatch(a));
                    if (given >= 0)
                        args[given] = $"training.max_steps={Math.Max(2, long.Parse(MaxSteps().Match(args[given]).Groups["n"].Value, CultureInfo.InvariantCulture) / 100)}";
                    else if (args[0] == "run")
                        args.Add("training.max_steps=2");
                    args.Add("eval.task_accuracy=false");
                }
                if (placeholders && args[0] is "run" or "plan")
                    args.AddRange(["dataset.seq_len=64", "training.batch_size=2", "training.gradient_accumulation_steps=1"]);
                if (cuda && !FineTune.Torch.Cuda.IsAvailable && args[0] is "run" or "plan")
                    args.Add("training.device=cpu");
                var (code, output, error) = InScratch(() => CliRunner.Run([.. args]));
                _log.WriteLine($"{Path.GetFileName(recipe)}: finetune {string.Join(' ', args)} -> {code}");
                Assert.True(code == 0, $"{Path.GetFileName(recipe)}: ./finetune {command}\n(run as: {string.Join(' ', args)})\nexit {code}\n{output}\n{error}");
                commandCount++;
            }
        }
        Assert.True(commandCount >= 13, $"{commandCount} header commands");
    }

    /// <summary>An HF folder (config.json, safetensors, tokenizer.json) of a 2-layer model trained for one step, for MODEL_DIR.</summary>
    private string TinyModel(string tokenizerFile)
    {
        string tokenizer = Directory.CreateDirectory(Path.Combine(_scratch, "tokenizer")).FullName;
        File.Copy(tokenizerFile, Path.Combine(tokenizer, "tokenizer.json"));
        string recipe = Path.Combine(_scratch, "tiny-model.yaml");
        string output = Path.Combine(_scratch, "tiny-model");
        File.WriteAllText(recipe, $"""
            model:
              config: {"{"}vocab_size: 2048, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048{"}"}
            tokenizer: {"{"}kind: hf, path: {tokenizer}{"}"}
            dataset: {"{"}format: synthetic, seq_len: 32, synthetic: {"{"}count: 16{"}"}{"}"}
            training: {"{"}max_steps: 1, device: cpu, precision: fp32{"}"}
            eval: {"{"}task_accuracy: false{"}"}
            output_dir: {output}
            """);
        var (code, _, error) = CliRunner.Run("run", recipe);
        Assert.True(code == 0, error);
        return Path.Combine(output, "checkpoints", "step_1", "model");
    }

    private T InScratch<T>(Func<T> action)
    {
        string previous = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(_scratch);
        try
        {
            return action();
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }
    }
}
