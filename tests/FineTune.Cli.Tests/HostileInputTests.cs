using Xunit;

namespace FineTune.Cli.Tests;

/// <summary>
/// Issue 21's hostile input through `validate` and `run` (the same checks): FIFOs, folders and empty files where a
/// data file is expected, empty and NUL paths, implausible config dimensions, duplicated JSON keys, a tokenizer
/// larger than the embedding (issue 22: a mid-run crash), an unreachable device, absurd batch sizes, resume targets
/// outside any run, an eval fraction that leaves almost nothing to train on. Each ends in exit 2 and one sentence,
/// before anything is allocated (no case here takes more than a moment).
/// </summary>
public sealed class HostileInputTests : IDisposable
{
    private const string Recipe = """
        model:
          config: {vocab_size: 300, hidden_size: 64, intermediate_size: 176, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 128}
        tokenizer: {kind: byte}
        dataset: {format: synthetic, seq_len: 64}
        training: {device: cpu}
        output_dir: {root}/out
        """;

    private readonly string _root = Directory.CreateTempSubdirectory("ft-hostile-").FullName;

    public HostileInputTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "nodata"));
        File.WriteAllText(Path.Combine(_root, "empty.jsonl"), "");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(_root, "fifo.jsonl")]))
            mkfifo.WaitForExit();
        Directory.CreateDirectory(Path.Combine(_root, "notstep"));
        WriteModel("huge", "{\"model_type\": \"llama\", \"vocab_size\": 32000, \"hidden_size\": 4096, \"intermediate_size\": 11008, \"num_hidden_layers\": 1000000000, \"num_attention_heads\": 32}");
        WriteModel("dup", "{\"model_type\": \"llama\", \"vocab_size\": 32000, \"vocab_size\": 64, \"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 2, \"num_attention_heads\": 4}");
        WriteModel("small", "{\"model_type\": \"llama\", \"vocab_size\": 1000, \"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"max_position_embeddings\": 128}");
        File.Copy(Path.Combine(CliRunner.RepositoryRoot(), "tests", "FineTune.Trainer.Tests", "Fixtures", "tokenizers", "tokenizer.json"), Path.Combine(_root, "small", "tokenizer.json"));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<string, string[], string> Cases() => new()
    {
        { "a FIFO as dataset", ["dataset.format=text", "dataset.path={root}/fifo.jsonl"], "dataset.path {root}/fifo.jsonl is a FIFO (named pipe), not a regular file" },
        { "a folder without data as dataset", ["dataset.format=text", "dataset.path={root}/nodata"], "is a folder without .txt, .json or .jsonl files" },
        { "an empty dataset file", ["dataset.format=text", "dataset.path={root}/empty.jsonl"], "dataset.path {root}/empty.jsonl (the override dataset.path={root}/empty.jsonl) is an empty file" },
        { "an empty path", ["dataset.format=text", "dataset.path=\"\""], "dataset.path on the override dataset.path=\"\" is an empty path" },
        { "a NUL in a path", ["dataset.format=text", "dataset.path=\"a\\0b\""], "is a path with a NUL character" },
        { "an implausible layer count", ["model.config=null", "model.path={root}/huge"], "num_hidden_layers 1000000000 is implausibly large" },
        { "a duplicated key in config.json", ["model.config=null", "model.path={root}/dup"], "{root}/dup/config.json: key $.vocab_size appears twice" },
        { "a tokenizer larger than the embedding", ["model.config=null", "model.path={root}/small", "model.path={root}/small", "tokenizer.kind=hf", "dataset.format=synthetic"], "has 2000 tokens but the model's embedding has vocab_size 1000 rows" },
        { "an absurd batch size", ["training.batch_size=2000000000"], "tokens per micro-batch is beyond any machine" },
        { "logits beyond the host budget", ["training.batch_size=100000", "offload.host_gb=1"], "for the logits and their gradient alone" },
        { "a resume target outside any run", ["resume={root}/notstep"], "resume {root}/notstep (the override resume={root}/notstep) is not a checkpoint folder" },
        { "an eval fraction above one half", ["eval.every_steps=10", "eval.fraction=0.9"], "eval.fraction 0.9 (the override eval.fraction=0.9) holds out more of the data than it trains on" },
        { "gpu for the device", ["training.device=gpu"], "(did you mean cuda?)" },
        { "another tool's key", ["dataset.train_on_inputs=true"], "train_on_inputs has no FineTune counterpart" },
        { "a synthetic set that takes hours", ["dataset.synthetic.count=2000000000"], "would take hours to generate" },
        { "a step count that takes years", ["training.max_steps=100000000000"], "training.max_steps gives 100,000,000,000 steps, which at the plan's" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValidateAndRunRefuseWithOneSentence(string name, string[] overrides, string sentence)
    {
        string recipe = Path.Combine(_root, "r.yaml");
        File.WriteAllText(recipe, Recipe.Replace("{root}", _root));
        string[] arguments = overrides.Select(o => o.Replace("{root}", _root)).ToArray();
        foreach (string command in new[] { "validate", "run" })
        {
            var (code, output, error) = CliRunner.Run([command, recipe, .. arguments]);
            Assert.True(code == 2, $"{name} ({command}): exit {code}\n{output}\n{error}");
            Assert.Single(error.Trim().Split('\n'));
            Assert.Contains(sentence.Replace("{root}", _root), error);
        }
        Assert.False(Directory.Exists(Path.Combine(_root, "out")), $"{name}: run left its output_dir behind");
    }

    [NoCudaFact]
    public void CudaOnAMachineWithoutOneIsRefusedByValidateToo() =>
        ValidateAndRunRefuseWithOneSentence("cuda", ["training.device=cuda"], "training.device is cuda (the override training.device=cuda) but this build of FineTune sees no CUDA device");

    /// <summary>Runs only where no CUDA device is visible (the refusal it checks cannot happen on a GPU machine).</summary>
    private sealed class NoCudaFactAttribute : FactAttribute
    {
        public NoCudaFactAttribute()
        {
            if (FineTune.Torch.Cuda.IsAvailable)
                Skip = "a CUDA device is visible here, so training.device=cuda is valid";
        }
    }

    private void WriteModel(string name, string config)
    {
        Directory.CreateDirectory(Path.Combine(_root, name));
        File.WriteAllText(Path.Combine(_root, name, "config.json"), config);
    }
}
