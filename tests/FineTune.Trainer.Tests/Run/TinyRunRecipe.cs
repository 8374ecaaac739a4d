using FineTune.Trainer.Recipes;

// Namespace "Runs", not "Run": a namespace named Run hides methods named Run called unqualified in FineTune.Trainer.*.
namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// A run small enough for unit tests: a 2-layer Llama (C = 32, GQA 4:2) on the byte tokenizer and the synthetic
/// reverse task, 2 x 2 rows of 32 tokens per step, optimizer states and activations on NVMe under a temp folder,
/// a checkpoint every 2 steps. Each instance owns a temp output folder, deleted on Dispose.
/// </summary>
internal sealed class TinyRunRecipe : IDisposable
{
    public TinyRunRecipe(string extraYaml = "eval:\n  task_accuracy: false")
    {
        OutputDirectory = Directory.CreateTempSubdirectory("finetune-run-").FullName;
        RecipePath = Path.Combine(OutputDirectory, "tiny.yaml");
        File.WriteAllText(RecipePath, $"""
            model:
              config:
                vocab_size: 260
                hidden_size: 32
                intermediate_size: 64
                num_hidden_layers: 2
                num_attention_heads: 4
                num_key_value_heads: 2
                max_position_embeddings: 64
            tokenizer:
              kind: byte
            dataset:
              format: synthetic
              seq_len: 32
              synthetic:
                task: reverse
                count: 200
            training:
              seed: 7
              batch_size: 2
              gradient_accumulation_steps: 2
              max_steps: 8
              device: cpu
            optimizer:
              lr: 3.0e-3
            schedule:
              type: cosine
              warmup_steps: 2
            offload:
              host_gb: 1
              nvme_dir: {OutputDirectory}/out/swap
              nvme_gb: 1
              optimizer_states: nvme
              activations: nvme
              sub_group_params: 8192
            logging:
              log_every_steps: 2
            checkpoint:
              every_steps: 2
              keep_last: 2
            {extraYaml}
            output_dir: {OutputDirectory}/out
            """);
    }

    public string OutputDirectory { get; }

    public string RecipePath { get; }

    public string RunDirectory => Path.Combine(OutputDirectory, "out");

    public Recipe Load(params string[] overrides) => Recipe.Load(RecipePath, overrides);

    public void Dispose() => Directory.Delete(OutputDirectory, recursive: true);
}
