using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Tokenizers;
using FineTune.Trainer.Training;
using SyntheticTask = FineTune.Trainer.Data.Synthetic.SyntheticTask;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Turns a resolved <see cref="Recipe"/> into the pieces of a run: tokenizer, training (and held-out) samples,
/// the loader options, the model's config and dtype, the compute device and the engine's <see cref="TrainingOptions"/>.
/// Pure translation: it loads files but trains nothing and writes nothing. The same recipe always gives the same
/// pieces (seeded synthetic data, seeded order), which is what makes a resumed run continue bit-exactly.
/// </summary>
public sealed class RunSetup
{
    /// <summary>Held-out synthetic records for the accuracy check (generated with a different seed than training).</summary>
    public const int AccuracyRecordCount = 64;

    private RunSetup(Recipe recipe) => Recipe = recipe;

    public Recipe Recipe { get; }

    public ITokenizer Tokenizer { get; private init; } = null!;

    public TokenizedDataset TrainData { get; private init; } = null!;

    /// <summary>Samples for eval/loss (eval.path, or eval.fraction of the records, the last ones, at least one); null without eval.</summary>
    public TokenizedDataset? EvalData { get; private init; }

    /// <summary>The synthetic task and held-out records whose greedy answers are checked; null for file datasets.</summary>
    public (SyntheticTask Task, IReadOnlyList<InstructionRecord> Records, InstructionTemplate Template)? Synthetic { get; private init; }

    /// <summary>The chat template conversations are rendered with, and why; null when the data holds no conversation.</summary>
    public ChatTemplateChoice? Chat { get; private init; }

    public DataLoaderOptions LoaderOptions { get; private init; } = null!;

    public DType ModelDType { get; private init; }

    public Device ComputeDevice { get; private init; }

    public long TotalSteps { get; private init; }

    /// <summary>Optimizer steps of one pass over the training samples (what training.epochs counts).</summary>
    public long StepsPerEpoch { get; private init; }

    /// <summary>
    /// The dataset line printed at run start: records loaded, truncated, split and dropped, trained tokens and
    /// steps per epoch, and the prompt or chat format the formatter used.
    /// </summary>
    public string DataSummary { get; private init; } = "";

    /// <summary>Reads the tokenizer and dataset named by <paramref name="recipe"/> and derives everything else.</summary>
    public static RunSetup Create(Recipe recipe)
    {
        ITokenizer tokenizer = recipe.Tokenizer.Kind == TokenizerKind.Byte
            ? new ByteTokenizer()
            : TokenizerLoader.Load(recipe.Tokenizer.Path ?? throw new UserErrorException("tokenizer.kind is hf but neither tokenizer.path nor model.path is set; set one of them."));
        var (records, template, synthetic) = ReadRecords(recipe);
        int evalCount = recipe.Eval.EverySteps is null || recipe.Eval.Path is not null ? 0 : Math.Max(1, (int)Math.Round(records.Count * recipe.Eval.Fraction));
        if (evalCount >= records.Count)
            throw new UserErrorException($"eval.fraction {recipe.Eval.Fraction} leaves no training records out of {records.Count}; lower eval.fraction.");
        ChatTemplateChoice? chat = records.Any(r => r.Format == DataFormat.Chat)
            ? ChatTemplateChoice.Detect(recipe.Tokenizer.Kind == TokenizerKind.Byte ? TokenizerLoader.ByteTokenizerName : recipe.Tokenizer.Path!)
            : null;
        // dataset.truncation applies when the recipe sets it; left at its default each format keeps its own (split for text, truncate for instructions and chats)
        OverflowPolicy? overflow = recipe.Values.IsDefault("dataset.truncation") ? null
            : recipe.Dataset.Truncation switch { TruncationMode.Split => OverflowPolicy.Split, TruncationMode.Drop => OverflowPolicy.Drop, _ => OverflowPolicy.Truncate };
        var datasetOptions = new DatasetOptions(recipe.Dataset.SeqLen, FormatOf(recipe.Dataset.Format), overflow, template, chat?.Template);
        TokenizedDataset train = TokenizedDataset.Build(records.Take(records.Count - evalCount).ToList(), tokenizer, datasetOptions);
        if (train.Samples.Count == 0)
            throw new UserErrorException($"the dataset gives no training samples of at most {recipe.Dataset.SeqLen} tokens; check dataset.path and dataset.seq_len.");
        List<DataRecord>? evalRecords = recipe.Eval.EverySteps is null ? null
            : recipe.Eval.Path is string evalPath ? DataFileReader.Read([evalPath], FormatOf(recipe.Dataset.Format))
            : records.Skip(records.Count - evalCount).ToList();
        TokenizedDataset? eval = evalRecords is null ? null : TokenizedDataset.Build(evalRecords, tokenizer, datasetOptions);
        long stepsPerEpoch = StepsForEpochs(recipe, train, epochs: 1);
        long totalSteps = recipe.Training.MaxSteps ?? StepsForEpochs(recipe, train, recipe.Training.Epochs);
        string format = synthetic is not null ? $"synthetic {recipe.Dataset.SyntheticTask.ToString().ToLowerInvariant()} task, compact prompt"
            : chat is not null ? $"chat: {chat.Reason}"
            : recipe.Dataset.Format == DatasetFormat.Alpaca ? "alpaca prompt template" : "plain text";
        DatasetStatistics s = train.Statistics;
        string summary = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"data: {s.RecordCount:N0} records loaded ({s.TruncatedCount:N0} truncated, {s.SplitCount:N0} split, {s.DroppedCount:N0} dropped) -> {s.SampleCount:N0} samples; {s.TrainedTokenCount:N0} trained tokens and {stepsPerEpoch:N0} steps per epoch; run: {totalSteps:N0} steps{(eval is null ? "" : $"; eval: {eval.Samples.Count:N0} samples")}; format: {format}");
        var loaderOptions = new DataLoaderOptions(recipe.Training.BatchSize, recipe.Dataset.SeqLen, (ulong)recipe.Training.Seed,
            recipe.Dataset.Shuffle, recipe.Dataset.Packing, tokenizer.PadId ?? tokenizer.EosId ?? 0);
        return new RunSetup(recipe)
        {
            Tokenizer = tokenizer,
            TrainData = train,
            EvalData = eval,
            Synthetic = synthetic,
            Chat = chat,
            LoaderOptions = loaderOptions,
            ModelDType = DTypeOf(recipe.Training.Precision),
            ComputeDevice = DeviceOf(recipe.Training.Device),
            TotalSteps = totalSteps,
            StepsPerEpoch = stepsPerEpoch,
            DataSummary = summary,
        };
    }

    /// <summary>
    /// A fresh model: loaded from model.path (<see cref="LoadModel"/>), or created from model.config with training.seed
    /// — with the weights on NVMe, drawn chunk by chunk straight into the engine's weight file
    /// (<see cref="LlamaModel.CreateStreamed"/>), so a model larger than host memory is never whole in memory.
    /// </summary>
    public LlamaModel CreateModel(RunPlan plan)
    {
        if (Recipe.Model.Path is not null)
            return LoadModel(Recipe.Model.Path, plan);
        LlamaConfig config = ConfigOf(Recipe, Tokenizer);
        return plan.OpensModelLazily
            ? LlamaModel.CreateStreamed(config, Recipe.Training.Seed, ModelDType, ComputeDevice)
            : LlamaModel.Create(config, Recipe.Training.Seed, ModelDType, ComputeDevice);
    }

    /// <summary>
    /// The model in <paramref name="folder"/> (model.path or a checkpoint's). With the weights on NVMe it is only
    /// opened (<see cref="LlamaModel.Open"/>): the engine copies it into its weight file one tensor at a time, so the
    /// whole model is never in host memory at once.
    /// </summary>
    public LlamaModel LoadModel(string folder, RunPlan plan) => plan.OpensModelLazily
        ? LlamaModel.Open(folder, ModelDType, ComputeDevice)
        : LlamaModel.Load(folder, ModelDType, ComputeDevice);

    /// <summary>The Llama config of model.config (head_dim = hidden_size / num_attention_heads).</summary>
    public static LlamaConfig ConfigOf(Recipe recipe, ITokenizer? tokenizer)
    {
        LlamaConfigSection c = recipe.Model.Config ?? throw new InvalidOperationException("model.config is not set");
        return new LlamaConfig
        {
            ModelType = "llama", VocabSize = c.VocabSize, HiddenSize = c.HiddenSize, IntermediateSize = c.IntermediateSize,
            LayerCount = c.NumHiddenLayers, HeadCount = c.NumAttentionHeads, KvHeadCount = c.NumKeyValueHeads,
            HeadDim = c.HiddenSize / c.NumAttentionHeads, MaxPositionEmbeddings = c.MaxPositionEmbeddings, RopeTheta = c.RopeTheta,
            RmsNormEps = c.RmsNormEps, InitializerRange = c.InitializerRange, TieWordEmbeddings = c.TieWordEmbeddings,
            BosTokenId = tokenizer?.BosId, EosTokenIds = tokenizer?.EosId is int eos ? [eos] : [], PadTokenId = tokenizer?.PadId,
        };
    }

    /// <summary>The engine's options for this recipe and <paramref name="plan"/>'s tiers: budgets, precision, AdamW and the schedule.</summary>
    public TrainingOptions EngineOptions(RunPlan plan) =>
        TrainingOptionsFor(Recipe, plan.OptimizerTier, plan.ActivationsOnNvme, plan.ParametersOnNvme, TotalSteps, plan.KeptLayers, plan.UnderForwardElementCount, plan.SpilledLayers,
            plan.Memory.Options.CarryHeldWeights);

    /// <summary>
    /// The <see cref="TrainingOptions"/> a recipe gives with the chosen tiers; the plan builds its memory plan from the
    /// same options the engine gets, so the two cannot disagree.
    /// </summary>
    public static TrainingOptions TrainingOptionsFor(Recipe r, StateTier optimizerTier, bool activationsOnNvme, bool parametersOnNvme, long totalSteps, int keptLayers = 0,
        long underForward = 0, int spilledLayers = 0, bool carryHeldWeights = false) => new()
    {
        KeptLayers = keptLayers,
        CarryHeldWeights = carryHeldWeights,
        SpilledLayers = spilledLayers,
        UpdateUnderForwardElementCount = underForward,
        GradientTier = GradientTierOf(r),
        Precision = r.Training.Precision switch { Precision.Bf16 => PrecisionMode.BFloat16, Precision.Fp16 => PrecisionMode.Float16, _ => PrecisionMode.Float32 },
        MicroBatchSize = r.Training.BatchSize,
        SequenceLength = r.Dataset.SeqLen,
        AccumulationSteps = r.Training.GradientAccumulationSteps,
        AdamW = new()
        {
            LearningRate = r.Optimizer.Lr, Beta1 = r.Optimizer.Beta1, Beta2 = r.Optimizer.Beta2, Epsilon = r.Optimizer.Eps,
            WeightDecay = r.Optimizer.WeightDecay, MaxGradNorm = r.Training.ClipGradNorm ?? 0,
        },
        Schedule = RunSchedule.Plan(r, Math.Max(totalSteps, 1), state: null).Schedule,
        OptimizerTier = optimizerTier,
        NvmeActivationLayers = activationsOnNvme ? -1 : 0,
        ParameterTier = parametersOnNvme ? ParameterTier.Nvme : ParameterTier.Device,
        // a run has saved its weights (final checkpoint, export) before the engine goes: nothing to read back
        RestoreWeightsOnDispose = !parametersOnNvme,
        NvmeDirectory = r.Offload.NvmeDir,
        HostBudgetByteCount = r.Offload.HostGb is double gb ? (long)(gb * OffloadSection.BytesPerGb) : long.MaxValue,
        SubGroupElementCount = r.Offload.SubGroupParams ?? DefaultSubGroupElementCount,
        IoEngine = r.Offload.IoEngine switch { IoEngine.IoUring => IO.IoEngineKind.IoUring, IoEngine.Threads => IO.IoEngineKind.Threads, _ => IO.IoEngineKind.Auto },
    };

    /// <summary>
    /// offload.gradients, where it applies: an update that waits for the norm (clipping or fp16 loss scaling) with one
    /// micro-batch per step; otherwise the plan's own choice (consumed, or accumulators for accumulation).
    /// </summary>
    private static Training.Gradients.GradientTier GradientTierOf(Recipe r)
    {
        bool waitsForNorm = r.Training.ClipGradNorm is not null || r.Training.Precision == Precision.Fp16;
        if (!waitsForNorm || r.Training.GradientAccumulationSteps != 1)
            return Training.Gradients.GradientTier.Auto;
        return r.Offload.Gradients switch
        {
            StorageTier.Host => Training.Gradients.GradientTier.HostAccumulators,
            StorageTier.Nvme => Training.Gradients.GradientTier.Nvme,
            _ => Training.Gradients.GradientTier.Auto,
        };
    }

    /// <summary>offload.sub_group_params when the recipe leaves it null: the engine's default.</summary>
    public static long DefaultSubGroupElementCount { get; } = new TrainingOptions { MicroBatchSize = 1, SequenceLength = 1 }.SubGroupElementCount;

    private static (List<DataRecord>, InstructionTemplate, (SyntheticTask, IReadOnlyList<InstructionRecord>, InstructionTemplate)?) ReadRecords(Recipe recipe)
    {
        if (recipe.Dataset.Format != DatasetFormat.Synthetic)
        {
            string path = recipe.Dataset.Path ?? throw new UserErrorException("dataset.path is not set; give a data file or use dataset.format=synthetic.");
            return (DataFileReader.Read([path], FormatOf(recipe.Dataset.Format)), InstructionTemplate.Alpaca, null);
        }
        var task = new SyntheticTask(recipe.Dataset.SyntheticTask == Recipes.SyntheticTask.Add ? SyntheticTaskKind.Add : SyntheticTaskKind.Reverse);
        ulong seed = (ulong)recipe.Training.Seed;
        var records = task.Generate(recipe.Dataset.SyntheticCount, seed)
            .Select((r, i) => new DataRecord($"synthetic:{i}", null, r, null)).ToList();
        // Held out for the accuracy check: a different stream (seed + 1), so most records were never trained on.
        List<InstructionRecord> heldOut = task.Generate(AccuracyRecordCount, seed + 1);
        return (records, InstructionTemplate.Compact, (task, heldOut, InstructionTemplate.Compact));
    }

    private static DataFormat FormatOf(DatasetFormat format) => format switch
    {
        DatasetFormat.Text => DataFormat.Text,
        DatasetFormat.Chat => DataFormat.Chat,
        _ => DataFormat.Alpaca,
    };

    /// <summary>The compute dtype of training.precision (master weights and states are fp32 whatever it is).</summary>
    public static DType DTypeOf(Precision precision) => precision switch
    {
        Precision.Bf16 => DType.BFloat16,
        Precision.Fp16 => DType.Float16,
        _ => DType.Float32,
    };

    private static Device DeviceOf(ComputeDevice device) => device switch
    {
        Recipes.ComputeDevice.Cpu => Device.Cpu,
        Recipes.ComputeDevice.Cuda => Cuda.IsAvailable ? Device.Cuda() : throw new UserErrorException("training.device is cuda but this build of FineTune sees no CUDA device; use training.device=cpu or auto."),
        _ => Cuda.IsAvailable ? Device.Cuda() : Device.Cpu,
    };

    /// <summary>Optimizer steps for training.epochs passes over the training tokens (packed) or samples (unpacked).</summary>
    private static long StepsForEpochs(Recipe recipe, TokenizedDataset train, int epochs)
    {
        long rowsPerStep = (long)recipe.Training.BatchSize * recipe.Training.GradientAccumulationSteps;
        long rows = recipe.Dataset.Packing
            ? (train.Samples.Sum(s => (long)s.Ids.Length - 1) + recipe.Dataset.SeqLen - 1) / recipe.Dataset.SeqLen
            : train.Samples.Count;
        return Math.Max(1, epochs * ((rows + rowsPerStep - 1) / rowsPerStep));
    }
}
