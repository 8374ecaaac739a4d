using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Recipes;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The recipe side of LoRA: model.adapter and model.lora turned into a <see cref="LoraConfig"/> and into adapters
/// for a loaded model (fresh from training.seed, or model.lora.path's PEFT folder, whose shape must be the
/// recipe's). A run with a LoRA recipe trains through <see cref="LoraRunEngine"/>, never full fine-tuning.
/// </summary>
public static class LoraSetup
{
    /// <summary>The adapters' config, or null when the recipe trains every weight.</summary>
    public static LoraConfig? ConfigOf(Recipe recipe)
    {
        if (recipe.Model.Adapter != AdapterKind.Lora)
            return null;
        LoraSection s = recipe.Model.Lora;
        return new LoraConfig { Rank = s.Rank, Alpha = s.Alpha, Dropout = s.Dropout, TargetModules = s.TargetModules, Trainable = s.Trainable };
    }

    /// <summary>The base's config: model.path's config.json, or model.config (without a tokenizer's special ids: for plans).</summary>
    public static LlamaConfig ModelConfigOf(Recipe recipe) =>
        recipe.Model.Path is string path ? LlamaConfigReader.ReadFolder(path) : RunSetup.ConfigOf(recipe, null);

    /// <summary>
    /// The recipe's adapters for <paramref name="model"/>: loaded from model.lora.path (checked against the recipe's
    /// rank, alpha, targets and trainable modules; the recipe's dropout applies) or created fresh with training.seed.
    /// </summary>
    public static LoraAdapters CreateAdapters(Recipe recipe, LlamaModel model)
    {
        LoraConfig config = ConfigOf(recipe) ?? throw new InvalidOperationException("the recipe has no LoRA adapter");
        if (recipe.Model.Lora.Path is not string folder)
            return LoraAdapters.Create(model, config, recipe.Training.Seed);
        LoraAdapters loaded = PeftAdapterReader.Load(folder, model, recipe.Training.Seed, dropout: config.Dropout);
        if (!loaded.Config.Equals(config))
        {
            LoraConfig f = loaded.Config;
            loaded.Dispose();
            throw new UserErrorException(
                $"model.lora.path {folder} holds an adapter with r {f.Rank}, lora_alpha {f.Alpha:G6}, targets [{string.Join(", ", f.Targets)}], modules_to_save [{string.Join(", ", f.Trainable)}], which differs from model.lora; set model.lora to match it.");
        }
        return loaded;
    }
}
