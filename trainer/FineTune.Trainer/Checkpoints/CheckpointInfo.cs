namespace FineTune.Trainer.Checkpoints;

/// <summary>A complete (renamed, manifest present) checkpoint folder: <c>step_&lt;N&gt;</c>. Not yet verified.</summary>
public sealed record CheckpointInfo(long Step, string DirectoryPath)
{
    public string FilePath(string relativePath) => Path.Combine(DirectoryPath, relativePath.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>Reads trainer_state.json; call after <see cref="CheckpointStore.Verify"/>.</summary>
    public TrainerState ReadTrainerState() => TrainerState.Read(FilePath(TrainerState.FileName));

    /// <summary>The recipe the checkpoint was trained with, bound but not re-validated (its paths may have moved).</summary>
    public Recipes.Recipe ReadRecipe() =>
        Recipes.Recipe.Load(FilePath(CheckpointWriter.RecipeFileName), options: new Recipes.RecipeLoadOptions { Validate = false });
}
