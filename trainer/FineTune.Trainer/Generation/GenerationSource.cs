using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Data;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Generation;

/// <summary>
/// What `finetune generate --model PATH` reads: PATH is an HF folder, a checkpoint (step_N, verified against its
/// manifest) or a run's output_dir (its newest complete checkpoint). A checkpoint also brings the recipe it was
/// trained with, which names its tokenizer (the byte tokenizer has no file) and its instruction prompt format; so does
/// an HF folder that `finetune export` wrote from a run (<see cref="ExportedRecipeFileName"/>).
/// </summary>
public sealed record GenerationSource(string ModelFolder, Recipe? TrainedWith)
{
    public static GenerationSource Resolve(string path)
    {
        if (!Directory.Exists(path))
            throw new UserErrorException($"--model {path}: no such folder; give an HF model folder, a checkpoint folder (step_N) or a run's output_dir.");
        if (File.Exists(Path.Combine(path, CheckpointManifest.FileName)))
            return FromCheckpoint(CheckpointStore.Open(path));
        string checkpoints = Path.Combine(path, "checkpoints");
        if (!File.Exists(Path.Combine(path, "config.json")) && Directory.Exists(checkpoints))
        {
            CheckpointInfo latest = new CheckpointStore(checkpoints).LoadLatest()
                ?? throw new UserErrorException($"{path} is a run folder without a complete checkpoint; generate once the run has saved one.");
            return FromCheckpoint(latest);
        }
        if (!File.Exists(Path.Combine(path, "config.json")))
            throw new UserErrorException($"--model {path}: the folder holds neither config.json nor checkpoints/; give an HF model folder, a checkpoint folder (step_N) or a run's output_dir.");
        string exported = Path.Combine(path, ExportedRecipeFileName);
        return new GenerationSource(path, File.Exists(exported) ? Recipe.Load(exported, options: new RecipeLoadOptions { Validate = false }) : null);
    }

    /// <summary>The recipe a run trained with, as `finetune export` copies it into the HF folder (other HF tools ignore it).</summary>
    public const string ExportedRecipeFileName = "finetune_recipe.yaml";

    /// <summary>
    /// The training recipe behind an export source: a checkpoint's recipe.yaml (its model/ folder's parent), or an
    /// exported HF folder's <see cref="ExportedRecipeFileName"/>; null for an HF folder from elsewhere.
    /// </summary>
    public static string? TrainingRecipeOf(string modelFolder)
    {
        string copied = Path.Combine(modelFolder, ExportedRecipeFileName);
        if (File.Exists(copied))
            return copied;
        string? parent = Path.GetDirectoryName(Path.GetFullPath(modelFolder));
        string recipe = parent is null ? "" : Path.Combine(parent, CheckpointWriter.RecipeFileName);
        return parent is not null && File.Exists(Path.Combine(parent, CheckpointManifest.FileName)) && File.Exists(recipe) ? recipe : null;
    }

    private static GenerationSource FromCheckpoint(CheckpointInfo checkpoint)
    {
        bool hasRecipe = File.Exists(checkpoint.FilePath(CheckpointWriter.RecipeFileName));
        return new GenerationSource(checkpoint.FilePath(RunCheckpoints.ModelFolder), hasRecipe ? checkpoint.ReadRecipe() : null);
    }

    /// <summary>
    /// The tokenizer: <paramref name="explicitTokenizer"/> when given; else the model folder's tokenizer.json; else the
    /// one the recipe trained with. Returns the name ChatTemplateChoice.Detect takes.
    /// </summary>
    public string TokenizerName(string? explicitTokenizer)
    {
        if (explicitTokenizer is not null)
            return explicitTokenizer;
        if (File.Exists(Path.Combine(ModelFolder, TokenizerLoader.TokenizerFileName)))
            return ModelFolder;
        if (TrainedWith?.Tokenizer.Kind == TokenizerKind.Byte)
            return TokenizerLoader.ByteTokenizerName;
        if (TrainedWith?.Tokenizer.Path is string trained && (File.Exists(trained) || Directory.Exists(trained)))
            return trained;
        throw new UserErrorException($"{ModelFolder} holds no {TokenizerLoader.TokenizerFileName}; pass --tokenizer PATH, or --tokenizer byte for a model trained with tokenizer.kind: byte (or give the run folder, whose recipe names it).");
    }

    /// <summary>The instruction prompt format the model was trained with: compact for the synthetic tasks, else alpaca.</summary>
    public InstructionTemplate InstructionFormat => TrainedWith?.Dataset.Format == DatasetFormat.Synthetic ? InstructionTemplate.Compact : InstructionTemplate.Alpaca;
}
