namespace FineTune.Trainer.Recipes;

/// <summary>
/// The one table of every recipe field, its default and its documentation. Binding, overrides, validation of
/// ranges, writing the resolved recipe back and docs/recipes.md are all driven from here, so a field added in
/// this list is everywhere at once. Sizes ending in _gb are GiB (2^30 bytes). Relative paths are relative to
/// the working directory the command runs in.
/// reference: LlamaConfig defaults from FORMATS.md §2.3; AdamW defaults from PyTorch (betas 0.9/0.999, eps 1e-8,
/// weight decay 0.01); section layout after torchtune configs (FORMATS.md §4.1).
/// </summary>
internal static class RecipeSchema
{
    /// <summary>Sections that exist only when the recipe (or an override) names them; null removes them.</summary>
    public static readonly IReadOnlySet<string> OptionalSections = new HashSet<string>(StringComparer.Ordinal) { "model.config" };

    private static readonly string[] s_tiers = ["auto", "device", "host", "nvme"];

    // The names of Models/Lora/LoraTargets and LoraTrainableModules (recipes do not depend on the model code).
    private static readonly string[] s_loraTargets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "all-linear"];
    private static readonly string[] s_loraTrainable = ["input_layernorm", "post_attention_layernorm", "norm", "embed_tokens", "lm_head"];

    public static readonly IReadOnlyList<RecipeField> Fields =
    [
        Path("model.path", null, "Folder of a Hugging Face Llama-family checkpoint (config.json + *.safetensors). Give this or model.config."),
        Int("model.config.vocab_size", 32000, "Vocabulary size (rows of the embedding).", min: 1),
        Int("model.config.hidden_size", 4096, "Width of the residual stream.", min: 1),
        Int("model.config.intermediate_size", 11008, "Width of the SwiGLU MLP.", min: 1),
        Int("model.config.num_hidden_layers", 32, "Number of decoder layers.", min: 1),
        Int("model.config.num_attention_heads", 32, "Query heads; must divide hidden_size.", min: 1),
        Int("model.config.num_key_value_heads", null, "Key/value heads (grouped-query attention); null means num_attention_heads.", min: 1, nullable: true),
        Int("model.config.max_position_embeddings", 2048, "Longest sequence the RoPE tables cover.", min: 1),
        Num("model.config.rope_theta", 10000.0, "RoPE base frequency.", min: 0, minExclusive: true),
        Num("model.config.rms_norm_eps", 1e-6, "Epsilon of RMSNorm.", min: 0, minExclusive: true),
        Num("model.config.initializer_range", 0.02, "Standard deviation of the normal initialization of weights.", min: 0, minExclusive: true),
        Bool("model.config.tie_word_embeddings", false, "Share the embedding matrix with the output projection."),
        Choice("model.adapter", "none", ["none", "lora"], "none trains every weight (full fine-tuning); lora freezes the base and trains the low-rank adapters of model.lora (exported in PEFT format)."),
        Int("model.lora.rank", 8, "LoRA rank r: each adapted projection W (out, in) gets A (r, in) and B (out, r).", min: 1),
        Num("model.lora.alpha", 16.0, "LoRA alpha: the update B A x is scaled by alpha / rank.", min: 0, minExclusive: true),
        Num("model.lora.dropout", 0.0, "Dropout on each adapter's input while training; the masks are a function of training.seed, the step, the micro-batch and the projection, so a resumed run draws the same ones. 0 disables it.", min: 0, max: 1, maxExclusive: true),
        Names("model.lora.target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"], s_loraTargets, "Projections that get an adapter; all-linear is all seven (q, k, v, o, gate, up, down)."),
        Names("model.lora.trainable", [], s_loraTrainable, "Base modules trained in full beside the adapters (PEFT's modules_to_save), e.g. [input_layernorm, post_attention_layernorm, norm]."),
        Path("model.lora.path", null, "A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) to continue training from; null starts fresh adapters (A Kaiming-uniform, B zero). Its r, lora_alpha and target_modules must match the keys above."),

        Choice("tokenizer.kind", "auto", ["auto", "hf", "byte"], "hf reads tokenizer.json; byte maps UTF-8 bytes to ids 0-255; auto is hf when model.path is set, byte otherwise."),
        Path("tokenizer.path", null, "Folder (or tokenizer.json file) of an hf tokenizer; null means model.path."),

        Choice("dataset.format", "text", ["text", "alpaca", "chat", "synthetic"], "text: JSONL {\"text\"} or plain text; alpaca: {instruction, input, output}; chat: OpenAI messages or ShareGPT; synthetic: generated, no file."),
        Path("dataset.path", null, "The dataset file (JSON, JSONL or text); required unless format is synthetic."),
        Int("dataset.seq_len", 512, "Tokens per training sequence.", min: 1),
        Bool("dataset.packing", true, "Concatenate examples into full seq_len sequences instead of padding each one."),
        Choice("dataset.truncation", "truncate", ["truncate", "split", "drop"], "What to do with an example longer than seq_len: cut it, split it into several, or skip it."),
        Bool("dataset.shuffle", true, "Shuffle examples every epoch (seeded by training.seed)."),
        Choice("dataset.synthetic.task", "reverse", ["reverse", "add"], "Synthetic task with checkable answers: reverse 3-8 lowercase letters (reverse) or add two numbers below 100 (add)."),
        Int("dataset.synthetic.count", 1024, "Number of synthetic examples.", min: 1),

        Int("training.seed", 42, "Seed of every random generator (init, shuffling, dropout).", min: 0, wide: true),
        Int("training.batch_size", 1, "Sequences per micro-batch.", min: 1),
        Int("training.gradient_accumulation_steps", 1, "Micro-batches per optimizer step.", min: 1),
        Int("training.max_steps", null, "Stop after this many optimizer steps; null means run training.epochs.", min: 1, nullable: true, wide: true),
        Int("training.epochs", 1, "Passes over the dataset (when max_steps is null).", min: 1),
        Choice("training.precision", "bf16", ["fp32", "bf16", "fp16"], "Compute precision; master weights and optimizer states stay fp32."),
        Num("training.clip_grad_norm", 1.0, "Clip the global gradient norm to this value; null disables clipping.", min: 0, minExclusive: true, nullable: true),
        Choice("training.recompute", "auto", ["auto", "always", "never", "spill"], "Decoder layers in backward: always recomputes each from its saved input (activations: one input per layer); never keeps every layer's autograd graph from forward to backward, as eager PyTorch does (no recompute, every layer's activations in host memory; needs the weights in host memory); spill keeps every layer's graph too but writes its saved tensors to offload.nvme_dir after the layer's forward and reads them back before its backward (no recompute, activations on NVMe; CPU, weights in host memory); auto keeps as many of the top layers as host_gb leaves room for when the weights are in host memory on the CPU, and spills the rest where the plan's step time says spilling beats recomputing (activations on NVMe), else recomputes them. The gradients are the same either way."),
        Choice("training.device", "auto", ["auto", "cpu", "cuda"], "Where the math runs; auto picks cuda when a GPU is visible."),

        Num("optimizer.lr", 2e-5, "Peak learning rate (AdamW).", min: 0, minExclusive: true),
        Pair("optimizer.betas", [0.9, 0.999], "AdamW beta1 and beta2, each in [0, 1)."),
        Num("optimizer.eps", 1e-8, "AdamW epsilon.", min: 0, minExclusive: true),
        Num("optimizer.weight_decay", 0.01, "Decoupled weight decay.", min: 0),

        Choice("schedule.type", "cosine", ["cosine", "linear", "constant"], "Learning-rate decay after warmup."),
        Int("schedule.warmup_steps", 0, "Linear warmup from 0 to optimizer.lr over this many steps.", min: 0),
        Num("schedule.min_lr_ratio", 0.0, "Final learning rate as a fraction of optimizer.lr.", min: 0, max: 1),

        Num("offload.device_gb", null, "GPU memory budget; null means all free GPU memory.", min: 0, minExclusive: true, nullable: true),
        Num("offload.host_gb", null, "Host memory budget the plan must respect (pools, staging, working set); null means no budget: auto tiers keep everything in host memory, nothing is checked against it, and runs say \"no host budget set\".", min: 0, minExclusive: true, nullable: true),
        Path("offload.nvme_dir", null, "Folder on an NVMe drive for swapped states; null disables the NVMe tier. Must exist, unless it is inside output_dir (then it is created). {rank} is replaced by the data-parallel rank (0 in a single process), e.g. /nvme/swap-{rank}."),
        Num("offload.nvme_gb", null, "NVMe space budget; null means the free space of nvme_dir less 10%.", min: 0, minExclusive: true, nullable: true),
        Choice("offload.optimizer_states", "auto", s_tiers, "Where fp32 master weights and Adam moments live; auto lets the planner choose."),
        Choice("offload.activations", "auto", s_tiers, "Where saved layer inputs live between forward and backward."),
        Choice("offload.gradients", "auto", ["auto", "host", "nvme"], "Where gradients wait for an update that needs the global norm first (training.clip_grad_norm, fp16 loss scaling), with one micro-batch per step: host keeps fp32 accumulators (4 bytes a parameter of host memory); nvme writes each to nvme_dir as backward makes it and reads it back for the update under the next forward (2 bytes a parameter each way for bf16 weights); auto picks nvme when the states or weights are on NVMe and the accumulators would take more than a quarter of host_gb. Without clipping or loss scaling gradients are consumed as backward makes them, and gradient accumulation always uses host accumulators, whatever this says."),
        Choice("offload.params", "auto", s_tiers, "Where the low-precision weights live between uses: with the compute (device; host on CPU), or nvme (CPU training): a file under nvme_dir, each layer's weights read into one of 3 host slots while the layer before computes. auto moves them to nvme only when nothing else fits host_gb."),
        Int("offload.sub_group_params", null, "Parameters per optimizer sub-group (the unit of swapping and of the update pipeline); null lets the planner choose.", min: 1, max: 1L << 40, nullable: true, wide: true),
        Int("offload.queue_depth", 32, "Outstanding NVMe requests per file.", min: 1, max: 4096),
        Choice("offload.io_engine", "auto", ["auto", "io_uring", "threads"], "NVMe I/O engine; auto uses io_uring with O_DIRECT when the kernel allows it, else threads with pread/pwrite."),

        Int("logging.log_every_steps", 1, "Log metrics every this many optimizer steps.", min: 1),
        Bool("logging.tensorboard", true, "Write TensorBoard event files to <output_dir>/tensorboard."),
        Num("logging.flush_seconds", 5.0, "Flush the TensorBoard file at least this often.", min: 0, minExclusive: true),

        Int("checkpoint.every_steps", 500, "Save a checkpoint every this many steps (and always at the end, and on Ctrl-C); null: no step-based saves.", min: 1, nullable: true),
        Num("checkpoint.every_minutes", 30.0, "Also save a checkpoint when this many minutes have passed since the last one, so a slow run is never hours from its last save; null: no time-based saves.", min: 0, minExclusive: true, nullable: true),
        Int("checkpoint.keep_last", 2, "Complete checkpoints kept; older ones are deleted.", min: 1),
        Path("checkpoint.dir", null, "Where checkpoints go; null means <output_dir>/checkpoints."),

        Int("eval.every_steps", null, "Evaluate every this many steps; null disables evaluation.", min: 1, nullable: true),
        Num("eval.fraction", 0.0, "Fraction of the dataset held out for evaluation (instead of eval.path).", min: 0, max: 1, maxExclusive: true),
        Path("eval.path", null, "A separate evaluation dataset in dataset.format (instead of eval.fraction)."),
        Bool("eval.task_accuracy", true, "Synthetic datasets: greedy-decode 64 held-out records before and after training and print the share of exactly right answers."),

        Path("output_dir", "runs/finetune", "Folder for TensorBoard logs, checkpoints and the final model."),
        Text("resume", null, "null starts fresh; latest (or true) resumes from the newest checkpoint, or starts fresh when there is none; or a path to a step_<N> checkpoint folder."),
    ];

    private static readonly Dictionary<string, RecipeField> s_byPath = Fields.ToDictionary(f => f.Path, StringComparer.Ordinal);

    /// <summary>Every section path ("model", "model.config", "dataset.synthetic", ...).</summary>
    public static readonly IReadOnlySet<string> Sections = Fields
        .SelectMany(f => Prefixes(f.Path)).ToHashSet(StringComparer.Ordinal);

    public static bool TryGetField(string path, out RecipeField field) => s_byPath.TryGetValue(path, out field!);

    public static RecipeField Field(string path) =>
        s_byPath.TryGetValue(path, out RecipeField? field) ? field : throw new ArgumentException($"{path} is not in the recipe schema.");

    private static IEnumerable<string> Prefixes(string path)
    {
        for (int dot = path.IndexOf('.'); dot >= 0; dot = path.IndexOf('.', dot + 1))
            yield return path[..dot];
    }

    private static RecipeField Int(string path, long? value, string doc, double? min = null, double? max = null, bool nullable = false, bool wide = false) =>
        new(path, FieldKind.Integer, value, doc) { Minimum = min, Maximum = max, Nullable = nullable, Wide = wide };

    private static RecipeField Num(string path, double? value, string doc, double? min = null, bool minExclusive = false,
        double? max = null, bool maxExclusive = false, bool nullable = false) =>
        new(path, FieldKind.Number, value, doc)
        {
            Minimum = min, MinimumExclusive = minExclusive, Maximum = max, MaximumExclusive = maxExclusive, Nullable = nullable,
        };

    private static RecipeField Bool(string path, bool value, string doc) => new(path, FieldKind.Bool, value, doc);

    private static RecipeField Text(string path, string? value, string doc) => new(path, FieldKind.Text, value, doc) { Nullable = value is null };

    private static RecipeField Path(string path, string? value, string doc) => new(path, FieldKind.Path, value, doc) { Nullable = value is null };

    private static RecipeField Choice(string path, string value, string[] choices, string doc) =>
        new(path, FieldKind.Choice, value, doc) { Choices = choices };

    private static RecipeField Names(string path, string[] value, string[] choices, string doc) =>
        new(path, FieldKind.NameList, value, doc) { Choices = choices };

    private static RecipeField Pair(string path, double[] value, string doc) =>
        new(path, FieldKind.NumberPair, value, doc) { Minimum = 0, Maximum = 1, MaximumExclusive = true };
}
