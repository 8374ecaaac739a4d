namespace FineTune.Trainer.Recipes;

/// <summary>
/// The recipe checks that look at the file system: inputs exist, outputs are writable, the NVMe folder exists
/// and has the space the budget claims. Writability is probed by creating and deleting a file, since permission
/// bits do not tell the whole story (read-only mounts, root, ACLs). Nothing is left behind.
/// </summary>
internal static class RecipeFileChecks
{
    /// <summary>The model's shape, or null when model.path is missing and that is allowed.</summary>
    public static ModelShape? CheckModel(Recipe recipe, RecipeValues v, RecipeLoadOptions options)
    {
        if (recipe.Model.Config is LlamaConfigSection config)
            return ModelShape.FromConfig(config);
        string path = recipe.Model.Path!;
        string configJson = Path.Combine(path, "config.json");
        if (!Directory.Exists(path))
        {
            if (options.AllowMissingInputs)
                return null;
            string what = File.Exists(path) ? "is a file, not a folder" : "does not exist";
            throw new UserErrorException($"model.path {path}{v.Where("model.path")} {what}; point it at a Hugging Face model folder holding config.json and *.safetensors.");
        }
        if (!File.Exists(configJson))
        {
            if (options.AllowMissingInputs)
                return null;
            throw new UserErrorException($"model.path {path}{v.Where("model.path")} has no config.json; point it at a Hugging Face model folder (config.json and *.safetensors).");
        }
        return ModelShape.FromConfigJson(configJson);
    }

    public static void CheckInputs(Recipe recipe, RecipeValues v, RecipeLoadOptions options)
    {
        if (!options.AllowMissingInputs)
        {
            if (recipe.Dataset.Format != DatasetFormat.Synthetic)
                RequireData(recipe.Dataset.Path!, "dataset.path", v, "a dataset file");
            if (recipe.Eval.Path is string evalPath)
                RequireData(evalPath, "eval.path", v, "an evaluation dataset file");
            if (recipe.Model.Adapter == AdapterKind.Lora && recipe.Model.Lora.Path is string adapterPath
                && !File.Exists(Path.Combine(adapterPath, "adapter_config.json")))
                throw new UserErrorException($"model.lora.path {adapterPath}{v.Where("model.lora.path")} holds no adapter_config.json; point it at a PEFT adapter folder, or set it to null for fresh adapters.");
            if (recipe.Tokenizer.Kind == TokenizerKind.Hf && recipe.Tokenizer.Path is string tokenizerPath)
            {
                string key = v.String("tokenizer.path") is null ? "model.path" : "tokenizer.path";
                string file = Directory.Exists(tokenizerPath) ? Path.Combine(tokenizerPath, "tokenizer.json") : tokenizerPath;
                if (!File.Exists(file))
                    throw new UserErrorException($"{key} {tokenizerPath}{v.Where(key)} holds no tokenizer.json; set tokenizer.path to the folder or file that has it, or use tokenizer.kind=byte.");
            }
        }
        if (recipe.Resume is string resume && resume != "latest")
        {
            // the same structural test run applies (Checkpoints.CheckpointStore.Open): an existing step_<N> folder with a manifest
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(resume)));
            if (!Directory.Exists(resume) || !System.Text.RegularExpressions.Regex.IsMatch(name, @"^step_\d+$") || !File.Exists(Path.Combine(resume, "manifest.json")))
                throw new UserErrorException($"resume {resume}{v.Where("resume")} is not a checkpoint folder (an existing step_<N> folder with a manifest.json under a run's checkpoints/); use resume=latest or the path of such a folder.");
        }
    }

    public static void CheckOutputs(Recipe recipe, RecipeValues v)
    {
        RequireWritable(recipe.OutputDir, "output_dir", v);
        if (v.String("checkpoint.dir") is not null)
            RequireWritable(recipe.Checkpoint.Dir, "checkpoint.dir", v);
    }

    /// <summary>Checks offload.nvme_dir; returns its free space in GiB, or null when no NVMe tier is configured.</summary>
    public static double? CheckNvme(Recipe recipe, RecipeValues v)
    {
        if (recipe.Offload.NvmeDir is not string dir)
            return null;
        // A folder inside output_dir is created with it; any other must exist, so a typo or an unmounted drive
        // (/mnt/nvme0 missing) is caught instead of silently swapping to the root disk.
        string full = Path.GetFullPath(dir);
        string outputFull = Path.TrimEndingDirectorySeparator(Path.GetFullPath(recipe.OutputDir)) + Path.DirectorySeparatorChar;
        bool insideOutput = full.StartsWith(outputFull, StringComparison.Ordinal);
        if (!Directory.Exists(full) && !insideOutput)
            throw new UserErrorException($"offload.nvme_dir {dir}{v.Where("offload.nvme_dir")} does not exist; create it on an NVMe drive (mkdir -p) or point nvme_dir at an existing folder.");
        string existing = RequireWritable(dir, "offload.nvme_dir", v);
        // swap files of dead runs are removed when the run starts, so their space counts as free
        long reclaimable = Directory.Exists(full) ? Offload.Swap.StaleSwapFiles.ReclaimableByteCount(full) : 0;
        double freeGb = (new DriveInfo(existing).AvailableFreeSpace + reclaimable) / OffloadSection.BytesPerGb;
        if (recipe.Offload.NvmeGb is double wantedGb && wantedGb > freeGb)
            throw new UserErrorException($"offload.nvme_gb {RecipeValues.Format(wantedGb)}{v.Where("offload.nvme_gb")} is more than the {RecipeValues.Format(Math.Round(freeGb, 2))} GiB free in offload.nvme_dir {dir}; free space there or lower nvme_gb.");
        return freeGb;
    }

    /// <summary>A data file must be a non-empty regular file (a FIFO would block), a folder must hold data files: what reading it at run time requires.</summary>
    private static void RequireData(string path, string key, RecipeValues v, string what)
    {
        RequireExists(path, key, v, what);
        if (Directory.Exists(path))
        {
            if (!Directory.EnumerateFiles(path).Any(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)))
                throw new UserErrorException($"{key} {path}{v.Where(key)} is a folder without .txt, .json or .jsonl files; point it at {what} or a folder of them.");
            return;
        }
        IO.InputFile.RequireRegular(path, key);
        if (new FileInfo(path).Length == 0)
            throw new UserErrorException($"{key} {path}{v.Where(key)} is an empty file; point it at {what} with at least one record.");
    }

    private static void RequireExists(string path, string key, RecipeValues v, string what)
    {
        if (path.Length == 0 || path.Contains('\0'))
            throw new UserErrorException($"{key}{v.Where(key)} is {(path.Length == 0 ? "an empty path" : "a path with a NUL character")}; point it at {what}.");
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new UserErrorException($"{key} {path}{v.Where(key)} does not exist; point it at {what}.");
    }

    /// <summary>Returns the folder probed: <paramref name="path"/> or its nearest existing ancestor.</summary>
    private static string RequireWritable(string path, string key, RecipeValues v)
    {
        string full = Path.GetFullPath(path);
        if (File.Exists(full))
            throw new UserErrorException($"{key} {path}{v.Where(key)} is a file; {key} must be a folder.");
        string? existing = full;
        while (existing is not null && !Directory.Exists(existing))
        {
            if (File.Exists(existing))
                throw new UserErrorException($"{key} {path}{v.Where(key)} cannot be created because {existing} is a file; choose another folder.");
            existing = Path.GetDirectoryName(existing);
        }
        if (existing is null)
            throw new UserErrorException($"{key} {path}{v.Where(key)} is on no existing disk; choose another folder.");
        string probe = Path.Combine(existing, $".finetune-write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string reason = e is UnauthorizedAccessException ? "permission denied" : e.Message.TrimEnd('.');
            throw new UserErrorException($"{key} {path}{v.Where(key)} is not writable (creating a file in {existing}: {reason}); choose a folder you can write to.", e);
        }
        return existing;
    }
}
