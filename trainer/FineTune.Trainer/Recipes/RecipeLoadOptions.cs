namespace FineTune.Trainer.Recipes;

/// <summary>How strictly <see cref="Recipe.Load"/> checks what the recipe points at.</summary>
public sealed record RecipeLoadOptions
{
    public static readonly RecipeLoadOptions Default = new();

    /// <summary>
    /// Accept model.path, tokenizer.path, dataset.path and eval.path that do not exist yet (shipped recipes hold
    /// placeholders to be overridden; `finetune validate --allow-missing-inputs`). Checks that need the model's
    /// shape are then skipped when its config.json cannot be read, and so is the check that training.device=cuda
    /// sees a GPU (a GPU recipe validated on a CPU machine). Everything else is still checked.
    /// </summary>
    public bool AllowMissingInputs { get; init; }

    /// <summary>Run the semantic checks at all (false only for reading a recipe stored in a checkpoint).</summary>
    public bool Validate { get; init; } = true;

    /// <summary>This process's data-parallel rank: replaces {rank} in offload.nvme_dir, so each rank swaps to its
    /// own folder (or drive) while every rank reads the same recipe.</summary>
    public int Rank { get; init; }
}
