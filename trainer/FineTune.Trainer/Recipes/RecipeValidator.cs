namespace FineTune.Trainer.Recipes;

/// <summary>
/// Checks a bound recipe as a whole: choices that contradict each other, the model's shape against the
/// sequence length, rough memory budgets, and what it points at on disk (<see cref="RecipeFileChecks"/>).
/// Each failure is a <see cref="UserErrorException"/> with one sentence naming the key(s) to change.
/// Range checks of single fields happen earlier, while binding, where the line is known.
/// </summary>
internal static class RecipeValidator
{
    public static void Validate(Recipe recipe, RecipeLoadOptions options)
    {
        RecipeValues v = recipe.Values;
        CheckModelChoice(recipe, v);
        CheckAdapter(recipe, v);
        ModelShape? shape = RecipeFileChecks.CheckModel(recipe, v, options);
        if (shape is not null)
        {
            RecipeSizeCheck.CheckShape(shape, recipe.Model.Config is not null ? "model.config." : $"{shape.Source}: ");
            CheckShape(recipe, v, shape);
        }
        CheckTokenizer(recipe, v, shape);
        if (!options.AllowMissingInputs)
            CheckDevice(recipe, v);
        CheckDatasetAndEval(recipe, v);
        CheckTraining(recipe, v);
        CheckOffloadTiers(recipe, v);
        RecipeFileChecks.CheckInputs(recipe, v, options);
        if (shape is not null && recipe.Tokenizer.Kind == TokenizerKind.Hf && recipe.Tokenizer.Path is string tokenizerPath && !options.AllowMissingInputs)
            RecipeSizeCheck.CheckVocabulary(recipe, shape, tokenizerPath);
        RecipeFileChecks.CheckOutputs(recipe, v);
        double? nvmeFreeGb = RecipeFileChecks.CheckNvme(recipe, v);
        if (shape is not null)
        {
            RecipeBudgetCheck.Check(recipe, v, shape, nvmeFreeGb);
            RecipeSizeCheck.CheckGeometry(recipe, v, shape);
        }
    }

    private static void CheckModelChoice(Recipe recipe, RecipeValues v)
    {
        if (recipe.Model.Path is null && recipe.Model.Config is null)
            throw new UserErrorException("The recipe names no model; set model.path to a Hugging Face folder (e.g. model.path=/models/Llama-3.2-1B) or give model.config to train from scratch.");
        if (recipe.Model.Path is not null && recipe.Model.Config is not null)
            throw new UserErrorException($"The recipe gives both model.path{v.Where("model.path")} and model.config; keep one (add model.config=null to drop the config).");
    }

    private static void CheckAdapter(Recipe recipe, RecipeValues v)
    {
        if (recipe.Model.Adapter == AdapterKind.None)
        {
            // Changed from its default, not merely written: a resolved recipe (recipe.yaml of a checkpoint) writes every key.
            string? set = RecipeSchema.Fields.Where(f => f.Path.StartsWith("model.lora.", StringComparison.Ordinal))
                .FirstOrDefault(f => RecipeYamlWriter.FormatValue(v.Get(f.Path)) != RecipeYamlWriter.FormatDefault(f))?.Path;
            if (set is not null)
                throw new UserErrorException($"{set} is set{v.Where(set)} but model.adapter is none; add model.adapter=lora to train LoRA adapters, or remove the model.lora keys.");
            return;
        }
        if (recipe.Model.Lora.TargetModules.Count == 0)
            throw new UserErrorException($"model.lora.target_modules is empty{v.Where("model.lora.target_modules")}; list the projections to adapt, e.g. [q_proj, k_proj, v_proj, o_proj] or all-linear.");
    }

    private static void CheckShape(Recipe recipe, RecipeValues v, ModelShape shape)
    {
        string prefix = recipe.Model.Config is not null ? "model.config." : $"{shape.Source}: ";
        if (shape.HiddenSize % shape.Heads != 0)
            throw new UserErrorException($"{prefix}hidden_size {shape.HiddenSize} is not divisible by num_attention_heads {shape.Heads}; pick sizes with hidden_size = heads × head_dim.");
        if ((shape.HiddenSize / shape.Heads) % 2 != 0)
            throw new UserErrorException($"{prefix}hidden_size / num_attention_heads = {shape.HiddenSize / shape.Heads} is odd, but rotary embeddings need an even head dimension.");
        if (shape.Heads % shape.KeyValueHeads != 0)
            throw new UserErrorException($"{prefix}num_attention_heads {shape.Heads} is not a multiple of num_key_value_heads {shape.KeyValueHeads}; grouped-query attention needs whole groups.");
        if (recipe.Dataset.SeqLen > shape.MaxPositions)
            throw new UserErrorException($"dataset.seq_len {recipe.Dataset.SeqLen}{v.Where("dataset.seq_len")} exceeds the model's max_position_embeddings {shape.MaxPositions} ({shape.Source}); lower dataset.seq_len.");
    }

    private static void CheckTokenizer(Recipe recipe, RecipeValues v, ModelShape? shape)
    {
        if (recipe.Tokenizer.Kind == TokenizerKind.Hf && recipe.Tokenizer.Path is null)
            throw new UserErrorException($"tokenizer.kind is hf{v.Where("tokenizer.kind")} but neither tokenizer.path nor model.path says where tokenizer.json is; set tokenizer.path or use tokenizer.kind=byte.");
        if (recipe.Tokenizer.Kind == TokenizerKind.Byte && shape is not null && shape.VocabSize < 256)
            throw new UserErrorException($"The byte tokenizer needs ids 0-255 but the model's vocab_size is {shape.VocabSize} ({shape.Source}); raise vocab_size to at least 256.");
    }

    /// <summary>training.device cuda on a machine (or build) without CUDA: run refused it at model creation, validate now too.</summary>
    private static void CheckDevice(Recipe recipe, RecipeValues v)
    {
        if (recipe.Training.Device == ComputeDevice.Cuda && !Torch.Cuda.IsAvailable)
            throw new UserErrorException($"training.device is cuda{v.Where("training.device")} but this build of FineTune sees no CUDA device; use training.device=cpu or auto, or run on a GPU machine.");
    }

    private static void CheckDatasetAndEval(Recipe recipe, RecipeValues v)
    {
        if (recipe.Dataset.Format != DatasetFormat.Synthetic && recipe.Dataset.Path is null)
            throw new UserErrorException($"dataset.format is {v.String("dataset.format")}{v.Where("dataset.format")} but dataset.path is not set; give dataset.path=FILE or use dataset.format=synthetic.");
        if (recipe.Eval.Fraction > 0 && recipe.Eval.Path is not null)
            throw new UserErrorException($"eval.fraction{v.Where("eval.fraction")} and eval.path{v.Where("eval.path")} are both set; hold out a fraction or give a separate file, not both.");
        if (recipe.Eval.EverySteps is not null && recipe.Eval.Path is null && recipe.Eval.Fraction > 0.5)
            throw new UserErrorException($"eval.fraction {RecipeValues.Format(recipe.Eval.Fraction)}{v.Where("eval.fraction")} holds out more of the data than it trains on; use a small fraction such as 0.05.");
        if (recipe.Eval.EverySteps is not null && recipe.Eval.Fraction == 0 && recipe.Eval.Path is null)
            throw new UserErrorException($"eval.every_steps is set{v.Where("eval.every_steps")} but there is nothing to evaluate on; set eval.fraction (e.g. 0.05) or eval.path.");
    }

    private static void CheckTraining(Recipe recipe, RecipeValues v)
    {
        if (recipe.Training.Device == ComputeDevice.Cpu && recipe.Training.Precision == Precision.Fp16)
            throw new UserErrorException($"training.precision fp16{v.Where("training.precision")} needs a GPU but training.device is cpu; use bf16 or fp32.");
        // a warmup longer than the run is shortened to the run's length at start (Runs.RunSchedule), whether the
        // length comes from max_steps or from epochs; it is not an error (a quick run of a long recipe must work)
        if (recipe.Optimizer.Beta1 >= 1 || recipe.Optimizer.Beta2 >= 1)
            throw new UserErrorException($"optimizer.betas{v.Where("optimizer.betas")} must both be below 1.");
        if (recipe.Resume is string resume && resume.Length == 0)
            throw new UserErrorException("resume is an empty string; use null, latest, or a checkpoint folder.");
    }

    private static void CheckOffloadTiers(Recipe recipe, RecipeValues v)
    {
        OffloadSection o = recipe.Offload;
        foreach (var (key, tier) in new[] { ("optimizer_states", o.OptimizerStates), ("activations", o.Activations), ("params", o.Params) })
        {
            if (tier == StorageTier.Nvme && o.NvmeDir is null)
                throw new UserErrorException($"offload.{key} is nvme{v.Where("offload." + key)} but offload.nvme_dir is not set; give nvme_dir=/path/on/nvme.");
            if (tier == StorageTier.Device && recipe.Training.Device == ComputeDevice.Cpu)
                throw new UserErrorException($"offload.{key} is device{v.Where("offload." + key)} but training.device is cpu; use host or nvme.");
        }
        if (o.NvmeGb is not null && o.NvmeDir is null)
            throw new UserErrorException($"offload.nvme_gb is set{v.Where("offload.nvme_gb")} but offload.nvme_dir is not; give the folder the NVMe budget applies to.");
    }
}
