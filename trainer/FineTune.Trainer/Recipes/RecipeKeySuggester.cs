namespace FineTune.Trainer.Recipes;

/// <summary>
/// Finds the valid recipe key closest to a misspelled one, for "did you mean" messages. A key of the same section
/// wins ties; the same name in another section (training.lr -> optimizer.lr) costs 2 edits; a few names other
/// tools use (learning_rate, max_seq_len, dtype...) map to ours directly.
/// </summary>
internal static class RecipeKeySuggester
{
    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["learning_rate"] = "optimizer.lr",
        ["lr_scheduler"] = "schedule",
        ["scheduler"] = "schedule",
        ["num_warmup_steps"] = "schedule.warmup_steps",
        ["warmup"] = "schedule.warmup_steps",
        ["max_seq_len"] = "dataset.seq_len",
        ["seq_length"] = "dataset.seq_len",
        ["dtype"] = "training.precision",
        ["epochs_run"] = "training.epochs",
        ["save_every_n_steps"] = "checkpoint.every_steps",
        ["keep_last_n_checkpoints"] = "checkpoint.keep_last",
        ["log_every_n_steps"] = "logging.log_every_steps",
        ["resume_from_checkpoint"] = "resume",
        ["checkpointer"] = "checkpoint",
        ["metric_logger"] = "logging",
    };

    /// <summary>Keys of other tools that FineTune has no counterpart for, with what it does instead.</summary>
    private static readonly Dictionary<string, string> s_unsupported = new(StringComparer.OrdinalIgnoreCase)
    {
        ["train_on_inputs"] = "FineTune never trains on prompt tokens of alpaca and chat data (only the responses carry labels), and trains on all of plain text; remove the key",
        ["train_on_prompt"] = "FineTune never trains on prompt tokens of alpaca and chat data (only the responses carry labels), and trains on all of plain text; remove the key",
    };

    /// <summary>Values of choice fields as other tools write them, mapped to ours ("gpu" is cuda, not the nearer-spelled cpu).</summary>
    private static readonly Dictionary<string, string> s_choiceAliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gpu"] = "cuda", ["cuda:0"] = "cuda", ["nvidia"] = "cuda",
        ["float32"] = "fp32", ["f32"] = "fp32", ["float"] = "fp32",
        ["bfloat16"] = "bf16", ["float16"] = "fp16", ["half"] = "fp16", ["f16"] = "fp16",
        ["ram"] = "host", ["memory"] = "host", ["cpu"] = "host", ["disk"] = "nvme", ["ssd"] = "nvme",
        ["uring"] = "io_uring", ["iouring"] = "io_uring",
    };

    /// <summary>
    /// The end of an unknown-key sentence: "the closest valid key is optimizer.lr", or why there is none.
    /// A dotted key is only matched to fields (a bare section name such as "training" reads like a truncated key).
    /// </summary>
    public static string Hint(string unknownPath)
    {
        string name = unknownPath[(unknownPath.LastIndexOf('.') + 1)..];
        if (s_unsupported.TryGetValue(name, out string? why))
            return $"{name} has no FineTune counterpart: {why}";
        return $"the closest valid key is {Closest(unknownPath)}";
    }

    /// <summary>The choice closest to <paramref name="text"/>: a known alias first, else the smallest edit distance.</summary>
    public static string ClosestChoice(IReadOnlyList<string> choices, string text) =>
        s_choiceAliases.TryGetValue(text, out string? alias) && choices.Contains(alias, StringComparer.Ordinal)
            ? alias
            : choices.MinBy(c => Distance(c, text))!;

    /// <summary>Every path a key may take: fields and sections.</summary>
    public static IEnumerable<string> AllPaths => RecipeSchema.Fields.Select(f => f.Path).Concat(RecipeSchema.Sections);

    public static string Closest(string unknownPath)
    {
        int dot = unknownPath.LastIndexOf('.');
        string section = dot >= 0 ? unknownPath[..dot] : "";
        string name = unknownPath[(dot + 1)..];
        if (s_aliases.TryGetValue(name, out string? alias))
            return alias;
        string best = "";
        int bestScore = int.MaxValue;
        IEnumerable<string> candidates = dot >= 0 ? RecipeSchema.Fields.Select(f => f.Path) : AllPaths;
        foreach (string candidate in candidates.Distinct().OrderBy(p => p, StringComparer.Ordinal))
        {
            int candidateDot = candidate.LastIndexOf('.');
            string candidateSection = candidateDot >= 0 ? candidate[..candidateDot] : "";
            string candidateName = candidate[(candidateDot + 1)..];
            int score = Distance(name, candidateName) * 2 + (candidateSection == section ? 0 : 4) + (candidateName.Length == 0 ? 99 : 0);
            if (score < bestScore)
                (best, bestScore) = (candidate, score);
        }
        return best;
    }

    /// <summary>Levenshtein distance (insertions, deletions, substitutions each cost 1), case-insensitive.</summary>
    public static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j] + 1, current[j - 1] + 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
