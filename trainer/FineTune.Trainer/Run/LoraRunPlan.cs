using System.Globalization;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The plan of a LoRA recipe (model.adapter: lora), from the model's shape alone: the engine's own
/// <see cref="AdapterPlan"/> for the chosen tiers (built from the options the run gives the engine, so the figures
/// are the engine's), the host peak (the engine's pool and trained tensors, one layer's working set or the base's
/// largest tensor while the store fills, the runtime) and the NVMe traffic per step, the base read for every stage's
/// forward and again for its backward. Tiers left on auto: everything on the host when it fits host_gb, else the
/// base to NVMe (with nvme_dir), then the activations, then the adapter states; refused with one sentence when
/// nothing fits. LoRA trains on the CPU (training.device auto means cpu here; cuda is refused).
/// </summary>
public sealed record LoraRunPlan
{
    public required LlamaConfig Config { get; init; }
    public required LoraConfig Lora { get; init; }
    public required AdapterPlan Memory { get; init; }
    public required TrainingOptions Options { get; init; }
    public required DType WeightDType { get; init; }
    public required long WorkingByteCount { get; init; }
    /// <summary>Transient host bytes while the store fills: the largest base tensor (or drawn chunk) as read, float32 at most, and converted.</summary>
    public required long LoadingByteCount { get; init; }
    public required NvmeTraffic Traffic { get; init; }
    /// <summary>One checkpoint: the adapters and extras in float32 (the PEFT file) and their fp32 master, m and v; the base is recorded, not copied.</summary>
    public long CheckpointByteCount => Memory.TrainedElementCount * 16L;

    /// <summary>
    /// A rough step time for the checkpoint-by-time count: forward, recompute and input-gradient backward through the
    /// base (6 FLOPs per base parameter per token) at RunPlan's assumed CPU rate, plus the base reads at its NVMe rate.
    /// </summary>
    public double StepSeconds => 6.0 * Memory.Layout.ElementCount * TokensPerStep / (MachineRates.AssumedCpuFlopsPerSecondPerCore * Environment.ProcessorCount)
        + Traffic.ReadBytes / MachineRates.AssumedNvmeBytesPerSecond;

    /// <summary>The disk this run's checkpoints take (RunSpaceCheck's prediction with the adapters' figures).</summary>
    public RunSpaceCheck.Space CheckpointSpace(Recipe recipe, int existingCheckpoints, long? totalSteps) =>
        RunSpaceCheck.Predict(recipe, Memory.TrainedElementCount * 4L, Memory.StateByteCount, Memory.NvmeFileByteCount, Memory.StatesOnNvme,
            StepSeconds, existingCheckpoints, totalSteps);
    public required long TokensPerStep { get; init; }
    public long? HostBudgetByteCount { get; init; }

    public long HostPeakByteCount(long baselineByteCount) => Memory.HostByteCount + Math.Max(WorkingByteCount, LoadingByteCount) + baselineByteCount;

    /// <summary>The plan for <paramref name="recipe"/> with <paramref name="config"/> (model.path's or model.config's).</summary>
    public static LoraRunPlan Create(Recipe recipe, LlamaConfig config, long baselineByteCount, long totalSteps = 1)
    {
        LoraConfig lora = LoraSetup.ConfigOf(recipe) ?? throw new InvalidOperationException("the recipe has no LoRA adapter");
        if (recipe.Training.Device == ComputeDevice.Cuda)
            throw new UserErrorException("LoRA training runs on the CPU for now; set training.device=cpu (or auto).");
        OffloadSection o = recipe.Offload;
        long? budget = o.HostGb is double gb ? (long)(gb * OffloadSection.BytesPerGb) : null;
        bool canNvme = o.NvmeDir is not null;
        bool baseOnNvme = o.Params == StorageTier.Nvme, activations = o.Activations == StorageTier.Nvme;
        StateTier states = o.OptimizerStates == StorageTier.Nvme ? StateTier.Nvme : StateTier.Host;
        LoraRunPlan plan = Build(recipe, config, lora, states, activations, baseOnNvme, budget, totalSteps);
        bool TooBig() => budget is long limit && plan.HostPeakByteCount(baselineByteCount) > limit;
        // auto tiers: the base is by far the biggest, then activations, then the (small) adapter states
        if (TooBig() && canNvme && o.Params == StorageTier.Auto)
            plan = Build(recipe, config, lora, states, activations, true, budget, totalSteps);
        if (TooBig() && canNvme && o.Activations == StorageTier.Auto)
            plan = Build(recipe, config, lora, states, true, plan.Memory.BaseOnNvme, budget, totalSteps);
        if (TooBig() && canNvme && o.OptimizerStates == StorageTier.Auto)
            plan = Build(recipe, config, lora, StateTier.Nvme, plan.Memory.NvmeActivationLayers > 0, plan.Memory.BaseOnNvme, budget, totalSteps);
        if (budget is long limit2 && plan.HostPeakByteCount(baselineByteCount) > limit2)
            throw new UserErrorException(
                $"Nothing fits: LoRA training needs {RunPlan.Gib(plan.HostPeakByteCount(baselineByteCount))} GiB of host memory even with {OnNvme(plan)} on NVMe " +
                $"but offload.host_gb is {RunPlan.Gib(limit2)}; raise host_gb, {(canNvme ? "put offload.params and activations on nvme" : "set offload.nvme_dir")}, or lower batch_size, seq_len or the rank.");
        if (o.NvmeGb is double nvmeGb && plan.Memory.NvmeFileByteCount > nvmeGb * OffloadSection.BytesPerGb)
            throw new UserErrorException($"The LoRA plan keeps {RunPlan.Gib(plan.Memory.NvmeFileByteCount)} GiB in offload.nvme_dir but nvme_gb is {nvmeGb}; raise nvme_gb or keep the base in host memory.");
        return plan;
    }

    private static LoraRunPlan Build(Recipe recipe, LlamaConfig config, LoraConfig lora, StateTier states, bool activationsOnNvme, bool baseOnNvme, long? budget, long totalSteps)
    {
        DType dtype = RunSetup.DTypeOf(recipe.Training.Precision);
        int e = dtype.ElementByteCount();
        TrainingOptions options = RunSetup.TrainingOptionsFor(recipe, states, activationsOnNvme, baseOnNvme, totalSteps) with
        {
            RestoreWeightsOnDispose = false, // a run saved its adapters before the engine goes; the base is frozen anyway
        };
        AdapterPlan memory = AdapterPlan.For(config, dtype, lora, options);
        int b = recipe.Training.BatchSize, t = recipe.Dataset.SeqLen, c = config.HiddenSize;
        // as RunPlan: one layer's recompute + backward (projections, their gradients, attention scores) and the
        // logits with their softmax gradient; the adapters add (B, T, r) per projection, negligible beside them
        long layerWork = 2L * b * t * (4L * c + 3L * config.IntermediateSize) * e + 2L * b * config.HeadCount * t * t * 4;
        long logits = 3L * b * t * config.VocabSize * 4;
        // the base is read into the store one tensor at a time (model.path: the largest tensor as read, float32 at most,
        // and its converted copy) or drawn one chunk at a time (model.config)
        long largest = recipe.Model.Path is null ? Math.Min(LlamaInitializer.ChunkElementCount, memory.Layout.Parameters.Max(p => p.ElementCount)) : memory.Layout.Parameters.Max(p => p.ElementCount);
        return new LoraRunPlan
        {
            Config = config, Lora = lora, Memory = memory, Options = options, WeightDType = dtype,
            WorkingByteCount = layerWork + logits,
            LoadingByteCount = largest * (4L + e) + (8L << 20),
            Traffic = memory.TrafficPerStep(recipe.Training.GradientAccumulationSteps),
            TokensPerStep = (long)b * t * recipe.Training.GradientAccumulationSteps,
            HostBudgetByteCount = budget,
        };
    }

    /// <summary>What `finetune plan` prints for a LoRA recipe: the adapters, where each state lives, the host peak and the NVMe traffic.</summary>
    public IEnumerable<string> Lines(Recipe recipe, long baselineByteCount)
    {
        AdapterPlan m = Memory;
        LoraFootprint footprint = LoraFootprint.Of(Config, Lora);
        foreach (string line in footprint.Lines())
            yield return line;
        string dir = recipe.Offload.NvmeDir ?? "nvme_dir";
        long slot = m.Pool.ReservedByteCount(BufferKind.LayerWeightSlots) / Math.Max(1, m.Options.ParameterSlots);
        string baseTier = m.BaseOnNvme
            ? F($"nvme ({dir}), read-only, streamed layer by layer through {m.Options.ParameterSlots} host slots of {slot / (double)(1 << 20):0.#} MiB")
            : "host, read-only (resident)";
        yield return F($"model: {m.Layout.ElementCount:N0} base parameters ({Config.LayerCount} layers, hidden {Config.HiddenSize}), {WeightDType.ElementByteCount() * 8}-bit, LoRA training on the CPU");
        yield return "where each state lives:";
        yield return F($"  base (frozen)      {Gib(m.BaseByteCount),10} GiB  {baseTier}; no gradient, master copy or optimizer state");
        yield return F($"  trained tensors    {Gib(m.TrainedTensorByteCount),10} GiB  host: {m.TrainedElementCount:N0} parameters (adapters fp32, extras {WeightDType.Name()}) and their fp32 gradients");
        yield return F($"  adapter states     {Gib(m.StateByteCount),10} GiB  {(m.StatesOnNvme ? $"nvme ({dir}), streamed through host buffers" : "host")} (fp32 master, Adam m, v)");
        yield return F($"  activations        {Gib(Config.LayerCount * (long)recipe.Training.BatchSize * recipe.Dataset.SeqLen * Config.HiddenSize * WeightDType.ElementByteCount()),10} GiB  {(m.NvmeActivationLayers > 0 ? $"nvme ({dir}), staged through host buffers" : "host")} (one checkpoint per layer per micro-batch)");
        yield return "predicted peak memory per tier:";
        string budget = HostBudgetByteCount is long b ? F($" of host_gb {Gib(b)} GiB") : " (no host_gb set)";
        string transient = LoadingByteCount > WorkingByteCount ? "one base tensor at a time while the store fills" : "working set";
        yield return F($"  host               {Gib(HostPeakByteCount(baselineByteCount)),10} GiB{budget}: pools {Gib(m.PoolByteCount)} + trained tensors {Gib(m.TrainedTensorByteCount)} + {transient} {Gib(Math.Max(WorkingByteCount, LoadingByteCount))} + runtime {Gib(baselineByteCount)}");
        yield return F($"  nvme               {Gib(m.NvmeFileByteCount),10} GiB  under nvme_dir; each checkpoint holds the adapters and their states, {Gib(CheckpointByteCount)} GiB x keep_last {recipe.Checkpoint.KeepLast} in {recipe.Checkpoint.Dir} (the base is recorded by path and CRC-32C, not copied)");
        yield return F($"nvme traffic per step: base read {Gib(Traffic.WeightReadBytes)} GiB (every stage forward and again for backward, each of {recipe.Training.GradientAccumulationSteps} micro-batches), never written; adapter states read {Gib(Traffic.StateReadBytes)} / write {Gib(Traffic.StateWriteBytes)} GiB; activations read {Gib(Traffic.ActivationReadBytes)} / write {Gib(Traffic.ActivationWriteBytes)} GiB ({TokensPerStep:N0} tokens per step)");
        if (m.BaseOnNvme)
            yield return F($"  at {MachineRates.AssumedNvmeBytesPerSecond / 1e9:0} GB/s the base reads alone take {Traffic.WeightReadBytes / MachineRates.AssumedNvmeBytesPerSecond:0.###} s per step; measure the drive with `finetune bench io` or a whole step with `finetune bench lora`.");
    }

    private static string OnNvme(LoraRunPlan plan)
    {
        var moved = new List<string>();
        if (plan.Memory.BaseOnNvme)
            moved.Add("the base");
        if (plan.Memory.NvmeActivationLayers > 0)
            moved.Add("activations");
        if (plan.Memory.StatesOnNvme)
            moved.Add("adapter states");
        return moved.Count == 0 ? "nothing" : string.Join(" and ", moved);
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString("0.###", CultureInfo.InvariantCulture);

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
