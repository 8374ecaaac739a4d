using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.Parameters;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Gradients;
using FineTune.Torch;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The memory and time plan of a recipe, computed from the model's shape without loading weights: where each
/// class of state lives, the host pool the engine will reserve (the engine's own <see cref="MemoryPlan"/>, built from
/// the same options the run gives the engine, so the figure is the engine's), a working-set estimate for one layer's
/// recompute and backward, NVMe bytes per step, and a step-time prediction from stated throughput assumptions.
/// Tiers left on auto are decided here: everything in host memory when it fits host_gb, else optimizer states to
/// NVMe, then activations, then (CPU) the weights too; <see cref="Create"/> refuses with one sentence when nothing fits.
/// </summary>
public sealed record RunPlan
{
    /// <summary>
    /// Time the CPU spends beyond the products it is timed on, as a share of them: norms, softmax, SiLU, RoPE, the
    /// cross-entropy and autograd's own bookkeeping (measured: about this much at hidden 512 to 3072 on this machine).
    /// </summary>
    public const double NonProductShare = 0.25;

    /// <summary>The update's share that runs under the next forward when it splits: one part in this many (see WithSplitUpdate).</summary>
    public const int UnderForwardShareDenominator = 8;

    public required LlamaConfig Config { get; init; }
    /// <summary>The engine's memory plan for these tiers: its pool classes and NVMe files are the figures printed here.</summary>
    public required MemoryPlan Memory { get; init; }
    /// <summary>NVMe bytes per step by kind (states, weights, activations).</summary>
    public required NvmeTraffic Traffic { get; init; }
    public required long ParameterCount { get; init; }
    public required int ElementByteCount { get; init; }
    public required bool OnCuda { get; init; }
    public required StateTier OptimizerTier { get; init; }
    public required bool ActivationsOnNvme { get; init; }
    /// <summary>Parameter offload: the weights rest in a file under nvme_dir and stream through a few host slots.</summary>
    public required bool ParametersOnNvme { get; init; }
    public required long WeightByteCount { get; init; }
    public required long GradientByteCount { get; init; }
    public required long OptimizerStateByteCount { get; init; }
    public required long ActivationByteCount { get; init; }
    /// <summary>Bytes the engine's pools reserve (weights, fp32 gradients, activation buffers, optimizer buffers).</summary>
    public required long PoolByteCount { get; init; }
    /// <summary>
    /// Transient tensors while the step computes, not pooled: one layer's recompute + backward, the logits, the
    /// gradients alive at once when they are consumed, and what a layer's products allocate beside (estimate).
    /// </summary>
    public required long WorkingByteCount { get; init; }
    public required long NvmeResidentByteCount { get; init; }
    public required long NvmeReadBytesPerStep { get; init; }
    public required long NvmeWriteBytesPerStep { get; init; }
    public required long CheckpointByteCount { get; init; }
    public required long TokensPerStep { get; init; }
    public required double ComputeSeconds { get; init; }
    public required double IoSeconds { get; init; }
    public required double OptimizerSeconds { get; init; }
    /// <summary>
    /// Decoder layers (the top ones) that keep their autograd graph from forward to backward instead of being recomputed
    /// (training.recompute; auto: as many as host_gb leaves room for, with resident weights on the CPU).
    /// </summary>
    public required int KeptLayers { get; init; }
    /// <summary>Host bytes one kept layer's graph holds between its forward and its backward (estimate: what autograd saves).</summary>
    public required long KeptLayerByteCount { get; init; }

    /// <summary>
    /// Decoder layers below the kept ones whose graphs keep their saved tensors on NVMe (training.recompute: spill, or
    /// auto where the plan's step time says it beats the recompute): no recompute, each graph's tensors written in
    /// forward and read back before its backward.
    /// </summary>
    public int SpilledLayers { get; init; }
    /// <summary>Seconds per step the recomputed layers cost (their forward again).</summary>
    public required double RecomputeSeconds { get; init; }
    /// <summary>FLOPs of one step: every product forward, again in the recompute of the layers not kept, and twice in backward.</summary>
    public required double FlopsPerStep { get; init; }
    /// <summary>The rates the step time rests on (measured on this machine, or assumed).</summary>
    public required MachineRates Rates { get; init; }
    public long? HostBudgetByteCount { get; init; }

    /// <summary>
    /// The resident bytes of this process with libtorch loaded and its CPU kernels warmed by one small matmul:
    /// the baseline every run carries besides its pools and working set.
    /// </summary>
    public static long MeasureRuntimeBaseline()
    {
        using (FineTune.Torch.TensorScope.Enter())
        {
            FineTune.Torch.Tensor a = FineTune.Torch.Torch.Ones([64, 64]);
            FineTune.Torch.Torch.MatMul(a, a);
        }
        return ProcessMemory.ResidentByteCount();
    }

    /// <summary>
    /// Host bytes alive while the engine builds, beyond its pools: the whole model's weights when they are loaded or
    /// created in memory (until the engine has taken them into its pool or weight file), or, for a model.path opened
    /// with the weights on NVMe, the largest tensor read at a time plus the staging buffers.
    /// </summary>
    public required long LoadingByteCount { get; init; }

    /// <summary>The run opens its model folder lazily (<see cref="LlamaModel.Open"/>: params on NVMe, model.path or a resume) instead of loading it whole.</summary>
    public required bool OpensModelLazily { get; init; }

    /// <summary>True when the largest of <see cref="LoadingByteCount"/> and <see cref="WorkingByteCount"/> is the loading.</summary>
    public bool LoadingDominates => LoadingByteCount > WorkingByteCount;

    /// <summary>Host bytes beyond the pools at the worst moment (CPU): one layer's working set while training, or the loading.</summary>
    public long TransientByteCount => OnCuda ? 0 : Math.Max(WorkingByteCount, LoadingByteCount);

    /// <summary>Host peak: pools + <see cref="TransientByteCount"/> + <paramref name="baselineByteCount"/> (the runtime and libtorch already resident).</summary>
    public long HostPeakByteCount(long baselineByteCount) => PoolByteCount + TransientByteCount + baselineByteCount;

    /// <summary>CPU time the step's direct I/O costs in the kernel (measured per byte with the drive's rate).</summary>
    public required double IoCpuSeconds { get; init; }

    /// <summary>
    /// The step, in two phases that cannot borrow from each other: forward, then backward. In each the CPU's work
    /// (compute, and on the CPU the optimizer and the kernel's I/O work beside it, on the same cores) and the drive's
    /// (that phase's NVMe bytes at the measured rate for reads and writes at once) overlap, so each phase takes the
    /// longer of the two. Forward moves its weight reads and saved inputs; the optimizer's states move in backward when
    /// the update follows backward, and under the next forward when it waits for the global norm (clipping). On CUDA
    /// the optimizer runs on the host beside the device's compute: the longer of the CPU's and the drive's whole step.
    /// Where the two are about equally busy neither hides the other: see <see cref="PhaseSeconds"/>.
    /// </summary>
    public double StepSeconds => OnCuda ? Math.Max(CpuSeconds, IoSeconds)
        : PhaseSeconds(Forward.CpuSeconds, Forward.IoSeconds) + PhaseSeconds(Backward.CpuSeconds, Backward.IoSeconds);

    /// <summary>
    /// Share of the smaller of a phase's CPU and drive seconds that is lost when the two are equally busy: then each
    /// waits for the other at every layer (a weight read, a sub-group's states) instead of running ahead. Fitted on the
    /// 2-core Xeon VM of 2026-12-02 (docs/scaling.md), where backward's CPU and drive seconds were within 5% of each other
    /// at all four sizes and the steps took 14-27% more than the longer of the two; on the AMD VM before, where the drive
    /// was about 1.5x the CPU, the plan was within 7% without it, and (min/max)^2 keeps it small there.
    /// </summary>
    public const double ContentionShare = 0.2;

    /// <summary>A phase's seconds: the longer of its CPU and drive time, plus <see cref="ContentionShare"/> of the shorter, scaled by (shorter / longer)^2.</summary>
    public static double PhaseSeconds(double cpu, double drive)
    {
        double longer = Math.Max(cpu, drive), shorter = Math.Min(cpu, drive);
        return longer <= 0 ? 0 : longer + ContentionShare * shorter * (shorter / longer) * (shorter / longer);
    }

    /// <summary>
    /// <paramref name="rates"/> with one decoder layer of this plan's shape timed in <paramref name="recipe"/>'s dtype for
    /// its micro-batch (<see cref="MachineRates.WithLayer"/>), on the CPU; on CUDA the product rate stands. A run calls
    /// it before its model exists, so the probe's weights are freed before the run's own grow.
    /// </summary>
    public MachineRates WithLayerTimed(MachineRates rates, Recipe recipe) =>
        OnCuda ? rates : rates.WithLayer(Config, RunSetup.DTypeOf(recipe.Training.Precision), recipe.Training.BatchSize, recipe.Dataset.SeqLen);

    /// <summary>Parameters at the top whose update runs under the next forward (<see cref="TrainingOptions.UpdateUnderForwardElementCount"/>); 0: none.</summary>
    public long UnderForwardElementCount { get; init; }

    /// <summary>The forward phase's CPU and drive seconds (see <see cref="StepSeconds"/>).</summary>
    public required (double CpuSeconds, double IoSeconds) Forward { get; init; }

    /// <summary>The backward phase's CPU and drive seconds, the optimizer's when it follows backward.</summary>
    public required (double CpuSeconds, double IoSeconds) Backward { get; init; }

    /// <summary>The CPU's share of the step (see <see cref="StepSeconds"/>).</summary>
    public double CpuSeconds => OnCuda ? Math.Max(ComputeSeconds, OptimizerSeconds + IoCpuSeconds) : ComputeSeconds + OptimizerSeconds + IoCpuSeconds;

    /// <summary>The plan for <paramref name="recipe"/>; <paramref name="resuming"/>: the model comes from a checkpoint folder (opened lazily with params on NVMe).</summary>
    /// <param name="rates">The rates the step time rests on; null assumes round ones (<see cref="MachineRates.Assumed"/>).</param>
    public static RunPlan Create(Recipe recipe, long baselineByteCount, bool resuming = false, MachineRates? rates = null)
    {
        bool fromFolder = resuming || recipe.Model.Path is not null;
        LlamaConfig config = recipe.Model.Path is string path ? LlamaConfigReader.ReadFolder(path) : RunSetup.ConfigOf(recipe, null);
        OffloadSection o = recipe.Offload;
        long? budget = o.HostGb is double gb ? (long)(gb * OffloadSection.BytesPerGb) : null;
        bool canNvme = o.NvmeDir is not null;
        RefuseUnsupportedTiers(o, recipe);
        if (o.Gradients == StorageTier.Nvme && !canNvme)
            throw new UserErrorException("offload.gradients is nvme but offload.nvme_dir is not set; set nvme_dir or use gradients auto or host.");
        StateTier optimizer = o.OptimizerStates == StorageTier.Nvme ? StateTier.Nvme : StateTier.Host;
        bool activations = o.Activations == StorageTier.Nvme;
        bool parameters = o.Params == StorageTier.Nvme;
        RunPlan plan = Build(recipe, config, optimizer, activations, parameters, budget, fromFolder, rates);
        bool TooBig() => budget is long limit && plan.HostPeakByteCount(baselineByteCount) > limit;
        // auto tiers: move what may move to NVMe, biggest first, until the host side fits
        if (TooBig() && canNvme && o.OptimizerStates == StorageTier.Auto)
            plan = Build(recipe, config, StateTier.Nvme, activations, parameters, budget, fromFolder, rates);
        if (TooBig() && canNvme && o.Activations == StorageTier.Auto)
            plan = Build(recipe, config, plan.OptimizerTier, true, parameters, budget, fromFolder, rates);
        if (TooBig() && canNvme && o.Params == StorageTier.Auto && !plan.OnCuda)
            plan = Build(recipe, config, plan.OptimizerTier, plan.ActivationsOnNvme, true, budget, fromFolder, rates);
        if (budget is long limit3 && plan.HostPeakByteCount(baselineByteCount) > limit3)
        {
            // clipping, loss scaling or accumulation keep every gradient until the step is decided: fp32, on the host
            string accumulators = plan.Memory.Gradients == GradientTier.HostAccumulators && plan.GradientByteCount > limit3 / 4
                ? $" ({Gib(plan.GradientByteCount)} GiB of it the fp32 gradients, which wait in host memory for the step's decision when clip_grad_norm, fp16 loss scaling or gradient accumulation is on)"
                : "";
            throw new UserErrorException(
                $"Nothing fits: even with {OnNvmeText(plan)} on NVMe the run needs {Gib(plan.HostPeakByteCount(baselineByteCount))} GiB of host memory{accumulators} " +
                $"but offload.host_gb is {Gib(limit3)}; raise host_gb, {(canNvme ? "put optimizer_states and activations on nvme" : "set offload.nvme_dir")}, or lower batch_size or seq_len{(accumulators.Length > 0 ? ", or set training.clip_grad_norm: null with one micro-batch per step" : "")}.");
        }
        plan = WithKeptLayers(plan, recipe, config, budget, baselineByteCount, fromFolder, rates);
        plan = WithSpilledLayers(plan, recipe, config, budget, baselineByteCount, fromFolder, rates);
        plan = WithSplitUpdate(plan, recipe, config, budget, baselineByteCount, fromFolder, rates);
        if (budget is long limit5 && plan.SpilledLayers > 0 && plan.HostPeakByteCount(baselineByteCount) > limit5) // recompute: spill, past the budget
            throw new UserErrorException(
                $"training.recompute: spill holds {Gib(plan.Memory.SpillHostByteCount)} GiB of layers' saved tensors in flight and the run then needs {Gib(plan.HostPeakByteCount(baselineByteCount))} GiB of host memory but offload.host_gb is {Gib(limit5)}; use training.recompute: auto or always, raise host_gb, or lower batch_size or seq_len.");
        if (budget is long limit4 && plan.HostPeakByteCount(baselineByteCount) > limit4) // recompute: never, past the budget
            throw new UserErrorException(
                $"training.recompute: never keeps all {plan.KeptLayers} layers' graphs ({Gib(plan.KeptLayers * plan.KeptLayerByteCount)} GiB) and the run then needs {Gib(plan.HostPeakByteCount(baselineByteCount))} GiB of host memory but offload.host_gb is {Gib(limit4)}; use training.recompute: auto (keeps what fits) or raise host_gb.");
        if (o.NvmeGb is double nvmeGb && plan.NvmeResidentByteCount > nvmeGb * OffloadSection.BytesPerGb)
            throw new UserErrorException($"The plan keeps {Gib(plan.NvmeResidentByteCount)} GiB in offload.nvme_dir but nvme_gb is {nvmeGb}; raise nvme_gb or keep more state in host memory.");
        return plan;
    }

    /// <summary>
    /// training.recompute on the tiers chosen: never keeps every layer (refused with NVMe weights), always none, auto as
    /// many top layers as the host budget has room for beyond the recomputing plan (all without a budget), on the CPU
    /// with resident weights; the tiers were chosen for recompute, so keeping only spends what is left.
    /// </summary>
    private static RunPlan WithKeptLayers(RunPlan plan, Recipe recipe, LlamaConfig config, long? budget, long baselineByteCount, bool fromFolder, MachineRates? rates)
    {
        int layers = config.LayerCount;
        int kept;
        switch (recipe.Training.Recompute)
        {
            case RecomputeMode.Always or RecomputeMode.Spill:
                return plan;
            case RecomputeMode.Never when plan.ParametersOnNvme:
                throw new UserErrorException("training.recompute: never keeps every layer's graph, which holds the weights it used, but offload.params is nvme (the weights stream through a few slots); use recompute auto or always, or params host.");
            case RecomputeMode.Never:
                kept = layers;
                break;
            default:
                if (plan.ParametersOnNvme || plan.OnCuda || layers == 0)
                    return plan;
                long headroom = budget is long limit ? limit - plan.HostPeakByteCount(baselineByteCount) : long.MaxValue;
                kept = (int)Math.Clamp(headroom / Math.Max(1, plan.KeptLayerByteCount), 0, layers);
                break;
        }
        return kept == 0 ? plan : Build(recipe, config, plan.OptimizerTier, plan.ActivationsOnNvme, plan.ParametersOnNvme, budget, fromFolder, rates, kept);
    }

    /// <summary>
    /// training.recompute: spill gives every layer not kept a graph with its saved tensors on NVMe (refused without
    /// nvme_dir, with NVMe weights or on CUDA); auto does so where the activations are on NVMe, the weights resident on
    /// the CPU, a layer's tensors big enough to be captured, and the two-phase step time with the spill's reads and
    /// writes comes out below the one with the recompute, within host_gb.
    /// </summary>
    private static RunPlan WithSpilledLayers(RunPlan plan, Recipe recipe, LlamaConfig config, long? budget, long baselineByteCount, bool fromFolder, MachineRates? rates)
    {
        int left = config.LayerCount - plan.KeptLayers;
        bool forced = recipe.Training.Recompute == RecomputeMode.Spill;
        if (forced && (recipe.Offload.NvmeDir is null || plan.ParametersOnNvme || plan.OnCuda))
            throw new UserErrorException("training.recompute: spill writes each layer's saved tensors to offload.nvme_dir from CPU memory, and needs the weights there too; " +
                $"{(recipe.Offload.NvmeDir is null ? "set offload.nvme_dir" : plan.OnCuda ? "train on the CPU" : "use offload.params: host")}, or use recompute auto or always.");
        long smallest = (long)recipe.Training.BatchSize * recipe.Dataset.SeqLen * config.HiddenSize * plan.ElementByteCount;
        bool worthTrying = recipe.Training.Recompute == RecomputeMode.Auto && plan.ActivationsOnNvme && !plan.ParametersOnNvme && !plan.OnCuda
            && recipe.Offload.NvmeDir is not null && smallest >= FineTune.Torch.AllocationCapture.MinimumByteCount;
        if (left == 0 || !(forced || worthTrying))
            return plan;
        RunPlan spilled = Build(recipe, config, plan.OptimizerTier, plan.ActivationsOnNvme, plan.ParametersOnNvme, budget, fromFolder, rates, plan.KeptLayers, 0, left);
        if (forced)
            return spilled;
        bool fits = budget is not long cap || spilled.HostPeakByteCount(baselineByteCount) <= cap;
        return fits && spilled.StepSeconds < plan.StepSeconds ? spilled : plan;
    }

    /// <summary>
    /// With the update following backward and its states on NVMe, the top eighth of it moves under the next forward,
    /// where the drive only reads weights, as far as host_gb has room for the held gradients. A fixed share, not one
    /// from measured rates, so that `plan` and the run choose the same split: on this machine a 14% split ran the 3.2B
    /// step in 27.2 s against 30.9 s for none and 30.2 s for 26% (which also filled host_gb to 98%), and a share from
    /// the plan's rates swung between none and a quarter from one measurement to the next.
    /// </summary>
    private static RunPlan WithSplitUpdate(RunPlan plan, Recipe recipe, LlamaConfig config, long? budget, long baselineByteCount, bool fromFolder, MachineRates? rates)
    {
        if (plan.OnCuda || plan.OptimizerTier != StateTier.Nvme || plan.Memory.Gradients != GradientTier.Consumed || !plan.Memory.OverlapsBackward)
            return plan;
        long count = plan.ParameterCount / UnderForwardShareDenominator;
        if (budget is long limit)
            count = Math.Min(count, Math.Max(0, limit - plan.HostPeakByteCount(baselineByteCount)) / plan.ElementByteCount);
        // the held gradients are whole parameters, so a count may hold a little more than it names: halve until it fits
        // residual masters: the held gradients carry their weights where host_gb has room for both, else that pass reads them back
        for (; count >= plan.Memory.Layout.SubGroupElementCount; count /= 2)
            foreach (bool carry in plan.Memory.CarriesWeights ? [true, false] : new[] { false })
            {
                RunPlan split = Build(recipe, config, plan.OptimizerTier, plan.ActivationsOnNvme, plan.ParametersOnNvme, budget, fromFolder, rates, plan.KeptLayers, count, plan.SpilledLayers, carry);
                if (budget is not long cap || split.HostPeakByteCount(baselineByteCount) <= cap)
                    return split;
            }
        return plan;
    }

    private static string OnNvmeText(RunPlan plan)
    {
        var moved = new List<string>();
        if (plan.OptimizerTier == StateTier.Nvme)
            moved.Add("optimizer states");
        if (plan.ActivationsOnNvme)
            moved.Add("activations");
        if (plan.ParametersOnNvme)
            moved.Add("weights");
        return moved.Count == 0 ? "nothing" : string.Join(" and ", moved);
    }

    /// <summary>
    /// Tiers a recipe can name that the engine does not implement yet are refused, not silently replaced: on CUDA
    /// the parameters stay on the device (parameter offload streams through host memory on the CPU path only), and
    /// optimizer states rest on the host or NVMe, not in GPU memory. On a CPU-only machine "device" and "host" are
    /// the same memory, so both are accepted for params there.
    /// </summary>
    private static void RefuseUnsupportedTiers(OffloadSection o, Recipe recipe)
    {
        bool cuda = recipe.Training.Device == ComputeDevice.Cuda || (recipe.Training.Device == ComputeDevice.Auto && FineTune.Torch.Cuda.IsAvailable);
        if (cuda && o.Params is StorageTier.Nvme or StorageTier.Host)
            throw new UserErrorException($"offload.params: {o.Params.ToString().ToLowerInvariant()} is not supported on CUDA yet (parameter offload is implemented for CPU training); use auto or device.");
        if (cuda && o.OptimizerStates is StorageTier.Device)
            throw new UserErrorException("offload.optimizer_states: device is not supported yet (states rest on the host or NVMe and stream through the host pool); use auto, host or nvme.");
    }

    private static RunPlan Build(Recipe recipe, LlamaConfig config, StateTier optimizerTier, bool activationsOnNvme, bool parametersOnNvme, long? budget, bool fromFolder, MachineRates? measured,
        int keptLayers = 0, long underForward = 0, int spilledLayers = 0, bool carryHeldWeights = false)
    {
        int e = recipe.Training.Precision == Precision.Fp32 ? 4 : 2;
        DType dtype = RunSetup.DTypeOf(recipe.Training.Precision);
        int b = recipe.Training.BatchSize, t = recipe.Dataset.SeqLen, c = config.HiddenSize, layers = config.LayerCount;
        bool cuda = recipe.Training.Device == ComputeDevice.Cuda || (recipe.Training.Device == ComputeDevice.Auto && FineTune.Torch.Cuda.IsAvailable);
        // the engine's own memory plan, from the options the run will give it (schedule length does not change memory)
        TrainingOptions options = RunSetup.TrainingOptionsFor(recipe, optimizerTier, activationsOnNvme, parametersOnNvme, totalSteps: 1, keptLayers, underForward, spilledLayers, carryHeldWeights);
        MemoryPlan memory = MemoryPlan.For(config, dtype, options);
        long parameters = memory.Layout.ElementCount;
        int accumulation = recipe.Training.GradientAccumulationSteps;
        NvmeTraffic traffic = memory.TrafficPerStep(accumulation);

        // one layer's recompute + backward in fp32-ish: q,k,v,o, MLP gate/up/act, their grads (~2x), attention scores
        // (B, H, T, T) twice, and the logits with their softmax gradient (B, T, V) x 3
        long layerWork = 2L * b * t * (4L * c + 3L * config.IntermediateSize) * e + 2L * b * config.HeadCount * t * t * 4;
        long keptLayer = MemoryPlan.GraphByteCount(config, b, t, e); // what autograd saves for a kept layer
        // the logits and their softmax gradient, fp32, for the whole vocabulary or one row block of a blocked head
        long logitRows = Enumerable.Range(0, memory.Layout.Stages.Count).Select(memory.Layout.Blocks).FirstOrDefault(x => x is not null)?.Max(x => x.Rows) ?? config.VocabSize;
        long logits = 3L * b * t * logitRows * 4;
        // fitted to VmHWM at 0.06B, 1.1B and 3.2B on this machine (docs/scaling.md): about 2.5 times a layer's weights
        // besides while a layer computes (its weight gradients as autograd makes them, oneDNN's reordered copies of the
        // weights for the bf16 products, the recompute), and 200 MiB the runtime grows by after the baseline was taken
        // (the dataset and tokenizer, the GC heap, thread stacks)
        long layerWeightBytes = memory.Layout.Stages.Where(st => !st.IsEdge).Select(st => st.Uses.Sum(p => memory.Layout.Parameters[p].ElementCount)).DefaultIfEmpty(0).Max() * e;
        long alongside = 5 * layerWeightBytes / 2 + (200L << 20) + memory.ConsumedGradientBoundByteCount + memory.HeldByteCount;
        long tokens = (long)b * t * accumulation;
        long weights = memory.WeightByteCount;
        // With params on NVMe the model never is whole in memory: LlamaModel.Open (model.path or a resume checkpoint)
        // reads one tensor at a time — its disk bytes (up to F64) through a chunk array of at most 64 MiB, then the
        // compute type — and a creation from model.config draws one chunk at a time (fp32, then the compute type);
        // either way an 8 MiB staging buffer and the optimizer's first masters through one sub-group window
        long largest = memory.Layout.Parameters.Max(p => p.ElementCount);
        long chunk = Math.Min(largest, LlamaInitializer.ChunkElementCount);
        long window = (8L << 20) + HostAlignment.RoundUpToPage(Math.Min(memory.Layout.SubGroupElementCount, parameters) * e) + HostAlignment.PageByteCount;
        long streamedLoading = fromFolder ? largest * (8 + e) + Math.Min(largest * 8, 64L << 20) + window : chunk * (4 + 4 + e) + window;
        // a folder is always opened lazily with params on NVMe; a creation is streamed when that holds less than the whole model
        bool lazily = parametersOnNvme && (fromFolder || streamedLoading < weights);
        long loading = lazily ? streamedLoading : weights;
        // products: each decoder layer's forward and twice in backward (6 FLOPs per weight per token) and its forward
        // again when it is recomputed (2); the LM head's forward and twice in backward (6); attention's two (T x T)
        // products per layer, 12 T C per token, and 4 more when it is recomputed
        long layerWeights = memory.Layout.Parameters.Where(p => p.Shape.Length == 2).Sum(p => p.ElementCount) - 2L * config.VocabSize * c + (config.TieWordEmbeddings ? (long)config.VocabSize * c : 0);
        int kept = memory.KeptLayers, spilled = memory.SpilledLayers, recomputed = layers - kept - spilled;
        long spilling = memory.SpillHostByteCount; // spilled graphs: in flight, pooled and read ahead
        double recomputeFlops = layers == 0 ? 0 : 2.0 * layerWeights * tokens * recomputed / layers + 4.0 * recomputed * tokens * t * c;
        double flops = 6.0 * layerWeights * tokens + 6.0 * config.VocabSize * c * tokens + 12.0 * layers * tokens * t * c + recomputeFlops;
        double forwardFlops = 2.0 * layerWeights * tokens + 2.0 * config.VocabSize * c * tokens + 4.0 * layers * tokens * t * c;
        MachineRates rates = measured ?? MachineRates.Assumed(cuda);
        double seconds(double f) => f / rates.GemmFlopsPerSecond * (1 + NonProductShare);
        // compute: with a measured layer (CPU), each decoder layer's own forward and backward times, the recomputed ones'
        // backward with its forward again, and the head's products from the product rate; else every product from it
        double forwardCompute, backwardCompute, recomputeSeconds;
        if (rates.Layer is LayerRate layer && !cuda)
        {
            double headForward = seconds(2.0 * config.VocabSize * c * tokens);
            forwardCompute = layers * layer.ForwardSeconds * accumulation + headForward;
            backwardCompute = (recomputed * layer.BackwardSeconds + (layers - recomputed) * layer.KeptBackwardSeconds) * accumulation + 2 * headForward;
            recomputeSeconds = recomputed * (layer.BackwardSeconds - layer.KeptBackwardSeconds) * accumulation;
        }
        else
        {
            (forwardCompute, backwardCompute, recomputeSeconds) = (seconds(forwardFlops), seconds(flops - forwardFlops), seconds(recomputeFlops));
        }
        (double, double) forward, backward;
        {
            // forward reads each streamed weight once (backward reads it again) and writes the saved inputs; the update's
            // states and weight writes move under the next forward when it is deferred (all of them), or split (the top
            // part), and in backward otherwise
            double inForward = !memory.OverlapsBackward ? 1 : memory.SplitElement is long split ? (parameters - split) / (double)parameters : 0;
            long updateBytes = traffic.StateReadBytes + traffic.StateWriteBytes + traffic.WeightWriteBytes;
            long forwardBytes = traffic.WeightReadBytes / 2 + traffic.ActivationWriteBytes + (long)(inForward * updateBytes);
            long backwardBytes = traffic.ReadBytes + traffic.WriteBytes - forwardBytes;
            double optimizer = parameters / rates.AdamParamsPerSecond;
            forward = (forwardCompute + forwardBytes * rates.IoCpuSecondsPerByte + inForward * optimizer, forwardBytes / rates.NvmeBytesPerSecond);
            // split: the update's lower part starts only once backward has passed the top part (its share of backward's compute)
            double delay = inForward is > 0 and < 1 ? inForward * backwardCompute : 0;
            // the bottom of the model (the embedding and the first layer) is final only when backward's compute ends: its
            // update's I/O follows it whatever the drive did before, and the next forward needs its weights first
            double tail = memory.OverlapsBackward ? TailElementCount(memory) / (double)parameters * updateBytes / rates.NvmeBytesPerSecond : 0;
            double backwardCpu = backwardCompute + backwardBytes * rates.IoCpuSecondsPerByte + (1 - inForward) * optimizer;
            backward = (backwardCpu, Math.Max(delay + backwardBytes / rates.NvmeBytesPerSecond, backwardCompute + tail));
        }
        return new RunPlan
        {
            Config = config, Memory = memory, ParameterCount = parameters, ElementByteCount = e, OnCuda = cuda,
            OptimizerTier = optimizerTier, ActivationsOnNvme = activationsOnNvme, ParametersOnNvme = parametersOnNvme,
            WeightByteCount = weights, GradientByteCount = memory.Layout.GradientByteCount, OptimizerStateByteCount = memory.StateByteCount,
            ActivationByteCount = recomputed * (long)b * t * c * e + spilled * memory.LayerGraphByteCount, PoolByteCount = memory.PoolByteCount,
            WorkingByteCount = layerWork + logits + alongside + kept * keptLayer + spilling,
            KeptLayers = kept, KeptLayerByteCount = keptLayer, SpilledLayers = spilled,
            RecomputeSeconds = recomputeSeconds,
            LoadingByteCount = loading, OpensModelLazily = lazily,
            NvmeResidentByteCount = memory.NvmeFileByteCount,
            NvmeReadBytesPerStep = traffic.ReadBytes,
            NvmeWriteBytesPerStep = traffic.WriteBytes,
            Traffic = traffic,
            CheckpointByteCount = weights + memory.StateByteCount,
            TokensPerStep = tokens,
            FlopsPerStep = flops,
            Rates = rates,
            ComputeSeconds = forwardCompute + backwardCompute,
            IoSeconds = (traffic.ReadBytes + traffic.WriteBytes) / rates.NvmeBytesPerSecond,
            IoCpuSeconds = (traffic.ReadBytes + traffic.WriteBytes) * rates.IoCpuSecondsPerByte,
            OptimizerSeconds = parameters / rates.AdamParamsPerSecond,
            Forward = forward,
            Backward = backward,
            UnderForwardElementCount = underForward,
            HostBudgetByteCount = budget,
        };
    }

    /// <summary>Elements of the stages backward finishes last (the embedding's and the first decoder layer's), whose update can only follow it.</summary>
    private static long TailElementCount(MemoryPlan memory)
    {
        IReadOnlyList<FineTune.Offload.Parameters.LayoutStage> stages = memory.Layout.Stages;
        return stages.Take(Math.Min(2, stages.Count)).Sum(s => s.Owned.Sum(p => memory.Layout.Parameters[p].ElementCount));
    }

    internal static string Gib(long byteCount) => (byteCount / OffloadSection.BytesPerGb).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
}
