using System.CommandLine;
using System.Globalization;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune plan RECIPE [key.path=value ...]`: prints where each class of state lives, the predicted peak memory per
/// tier, NVMe bytes per step and the predicted step time (<see cref="RunPlan"/>), or refuses with one sentence and
/// exit code 2 when nothing fits the budgets. Reads config.json only, never the weights.
/// </summary>
internal static class PlanCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("RECIPE") { Description = "Recipe file (.yaml)." };
        var overrides = new Argument<string[]>("OVERRIDES") { Description = "key.path=value overrides, as for run.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("plan", "Show where each state will live, predicted peak memory per tier, NVMe traffic and step time, without training.");
        var assumeRates = new Option<bool>("--assume-rates") { Description = "Predict the step time from round rates instead of measuring this machine's (a second or two, more with NVMe)." };
        command.Arguments.Add(recipe);
        command.Arguments.Add(overrides);
        command.Options.Add(assumeRates);
        command.SetAction(parsed =>
        {
            Recipe r = Recipe.Load(parsed.GetValue(recipe)!, parsed.GetValue(overrides) ?? []);
            long baseline = RunPlan.MeasureRuntimeBaseline();
            var store = new FineTune.Trainer.Checkpoints.CheckpointStore(r.Checkpoint.Dir);
            if (LoraSetup.ConfigOf(r) is not null)
            {
                // LoRA trains with its own engine: its plan (frozen base tier, adapter states, base reads per step)
                LoraRunPlan lora = LoraRunPlan.Create(r, LoraSetup.ModelConfigOf(r), baseline);
                RunSpaceCheck.CheckCheckpoints(r, lora.CheckpointSpace(r, store.List().Count, r.Training.MaxSteps));
                foreach (string line in lora.Lines(r, baseline))
                    Console.WriteLine(line);
                return ExitCodes.Success;
            }
            RunPlan plan = RunPlan.Create(r, baseline);
            RunSpaceCheck.CheckCheckpoints(r, plan, store, r.Training.MaxSteps);
            if (!parsed.GetValue(assumeRates))
                plan = RunPlan.Create(r, baseline, rates: MeasureRates(r, plan)); // the same tiers, timed with this machine's rates
            RunSpaceCheck.Space space = RunSpaceCheck.Predict(r, plan, store.List().Count, r.Training.MaxSteps);
            foreach (string line in Lines(r, plan, baseline, space))
                Console.WriteLine(line);
            return ExitCodes.Success;
        });
        return command;
    }

    private static IEnumerable<string> Lines(Recipe recipe, RunPlan p, long baseline, RunSpaceCheck.Space space)
    {
        string compute = p.OnCuda ? "device (cuda)" : "host (cpu)";
        MemoryPlan m = p.Memory;
        double n = p.ParameterCount;
        string Slots(BufferKind kind) => m.Pool.Get(kind) is { Count: > 0 } c ? F($"{c.Count} x {Gib(c.ByteCount)} GiB") : "no";
        string optimizer = p.OptimizerTier == StateTier.Nvme ? F($"nvme ({recipe.Offload.NvmeDir}), streamed through {Slots(BufferKind.OptimizerStates)} host buffers") : "host";
        string weights = p.ParametersOnNvme ? F($"nvme ({recipe.Offload.NvmeDir}), read layer by layer into {Slots(BufferKind.LayerWeightSlots)} host slots") : compute;
        string activations = p.ActivationsOnNvme ? $"nvme ({recipe.Offload.NvmeDir}), staged through host buffers" : "host";
        string gradients = m.Gradients switch
        {
            FineTune.Trainer.Training.Gradients.GradientTier.Consumed =>
                F($"consumed as backward makes them: at most {Gib(m.ConsumedGradientBoundByteCount)} GiB alive in host memory{(m.CarriesWeights ? ", with the weights each carries to the update" : "")}{(m.TiedBlocks is not null ? ", the tied lm_head's waiting on nvme" : m.DefersTiedHeadGradient ? ", the tied lm_head's made at the embedding's backward from the kept logits' gradient" : "")}"),
            FineTune.Trainer.Training.Gradients.GradientTier.Nvme =>
                F($"nvme ({recipe.Offload.NvmeDir}): written as backward makes them, read back by the update under the next forward (it waits for the norm to clip); at most {Gib(m.ConsumedGradientBoundByteCount)} GiB in host memory"),
            _ => "host (fp32 accumulators: gradient accumulation, or clipping with the training state in host memory)",
        };
        long gradientBytes = m.Gradients switch
        {
            FineTune.Trainer.Training.Gradients.GradientTier.Consumed => m.ConsumedGradientBoundByteCount,
            FineTune.Trainer.Training.Gradients.GradientTier.Nvme => m.GradientFileByteCount,
            _ => p.GradientByteCount,
        };
        yield return F($"model: {p.ParameterCount:N0} parameters ({p.Config.LayerCount} layers, hidden {p.Config.HiddenSize}), {p.ElementByteCount * 8}-bit weights, compute on {compute}");
        yield return "where each state lives (bytes per parameter: what the tier holds):";
        yield return F($"  weights          {p.WeightByteCount / n,5:0.0} B/param {Gib(p.WeightByteCount),9} GiB  {weights}");
        yield return F($"  gradients        {gradientBytes / n,5:0.0} B/param {Gib(gradientBytes),9} GiB  {gradients}");
        yield return F($"  optimizer states {p.OptimizerStateByteCount / n,5:0.0} B/param {Gib(p.OptimizerStateByteCount),9} GiB  {optimizer} ({(p.Memory.MasterEncoding == FineTune.Offload.Optimizer.StateEncoding.Bf16Residual ? "fp32 master as the bf16 weight plus a 16-bit residual, Adam m, v" : "fp32 master, Adam m, v")})");
        yield return F($"  activations      {p.ActivationByteCount / n,5:0.0} B/param {Gib(p.ActivationByteCount),9} GiB  {activations} ({(p.SpilledLayers > 0 ? "the spilled layers' saved tensors and " : "")}one checkpoint per recomputed layer per micro-batch)");
        int layers = p.Config.LayerCount, kept = p.KeptLayers;
        string keptText = kept > 0 ? F($"the top {kept} keep their autograd graph to backward ({Gib(kept * p.KeptLayerByteCount)} GiB of host memory in the working set)")
            : p.ParametersOnNvme ? "none kept (NVMe weights stream through slots a kept graph would hold)" : "none kept";
        int spilled = p.SpilledLayers;
        string spilledText = spilled > 0 ? F($"; {spilled} keep their graph with its saved tensors on NVMe ({Gib(p.Memory.LayerGraphByteCount)} GiB each, written in forward and read back before backward: no recompute)") : "";
        yield return F($"recompute ({recipe.Training.Recompute.ToString().ToLowerInvariant()}): {layers - kept - spilled} of {layers} layers recomputed in backward from their saved inputs (+{p.RecomputeSeconds:0.###} s of compute per step); {keptText}{spilledText}");
        if (p.Memory.SplitElement is long split)
            yield return F($"update: overlapped with backward, but the top {(p.ParameterCount - split) / n:P0} of the parameters ({p.ParameterCount - split:N0}) update under the next forward, where the drive only reads weights ({Gib(p.Memory.HeldByteCount)} GiB of their gradients{(p.Memory.CarriesHeldWeights ? " and weights" : "")} held in host memory until then{(p.Memory.UpdateWeightReadByteCount > 0 ? F($"; that pass reads their {Gib(p.Memory.UpdateWeightReadByteCount)} GiB of weights back") : "")})");
        yield return "predicted peak memory per tier:";
        if (p.OnCuda)
            yield return F($"  device             {Gib(p.WeightByteCount + p.WorkingByteCount),10} GiB  weights + one layer's working set");
        string budget = p.HostBudgetByteCount is long b ? F($" of host_gb {Gib(b)} GiB") : " (no host budget set: offload.host_gb is null)";
        string transient = !p.LoadingDominates ? "working set"
            : p.OpensModelLazily ? "one tensor at a time while the weight file fills"
            : "loaded weights while the engine builds";
        yield return F($"  host               {Gib(p.HostPeakByteCount(baseline)),10} GiB{budget}: pools {Gib(p.PoolByteCount)} + {transient} {Gib(p.TransientByteCount)} + runtime {Gib(baseline)}");
        yield return F($"  nvme               {Gib(p.NvmeResidentByteCount),10} GiB  swap files under nvme_dir");
        string states = space.Linked
            ? F($"optimizer states linked to the swap file (nothing copied); {space.StateCopies} of the kept checkpoints own theirs ({Gib(space.StateByteCount)} GiB each) once training goes on after them")
            : F($"optimizer states copied into each ({Gib(space.StateByteCount)} GiB)");
        yield return F($"  checkpoints        {Gib(space.NeedByteCount - space.SwapByteCount),10} GiB  at the peak in {recipe.Checkpoint.Dir}: {space.Added} of the {(space.Written >= int.MaxValue / 2 ? "many" : space.Written.ToString(CultureInfo.InvariantCulture))} this run writes, {Gib(space.WeightByteCount)} GiB of weights each, {states}");
        NvmeTraffic t = p.Traffic;
        if (t.ReadBytes + t.WriteBytes > 0)
            yield return F($"nvme traffic per step: read {Gib(t.ReadBytes)} GiB, write {Gib(t.WriteBytes)} GiB = {(t.ReadBytes + t.WriteBytes) / n:0.0} B/param (states {(t.StateReadBytes + t.StateWriteBytes) / n:0.0}, weights {(t.WeightReadBytes + t.WeightWriteBytes) / n:0.0}, activations {(t.ActivationReadBytes + t.ActivationWriteBytes) / n:0.0}, gradients {(t.GradientReadBytes + t.GradientWriteBytes) / n:0.0}; {p.TokensPerStep:N0} tokens per step)");
        string cpu = p.OnCuda ? F($"max(compute {p.ComputeSeconds:0.###}, optimizer {p.OptimizerSeconds:0.###} + I/O in the kernel {p.IoCpuSeconds:0.###})")
            : F($"compute {p.ComputeSeconds:0.###} + optimizer {p.OptimizerSeconds:0.###} + I/O in the kernel {p.IoCpuSeconds:0.###}");
        yield return p.OnCuda
            ? F($"predicted step time: {p.StepSeconds:0.###} s = the longer of the CPU's work ({cpu}) and the drive's (nvme {p.IoSeconds:0.###}), which overlap ({p.TokensPerStep / p.StepSeconds:0.#} tokens/s)")
            : F($"predicted step time: {p.StepSeconds:0.###} s = forward {RunPlan.PhaseSeconds(p.Forward.CpuSeconds, p.Forward.IoSeconds):0.###} (the longer of CPU {p.Forward.CpuSeconds:0.###} and drive {p.Forward.IoSeconds:0.###}, and where they are about equal a fifth of the shorter), then backward {RunPlan.PhaseSeconds(p.Backward.CpuSeconds, p.Backward.IoSeconds):0.###} (CPU {p.Backward.CpuSeconds:0.###}, drive {p.Backward.IoSeconds:0.###}) (the CPU's work in all: {cpu}; the drive's: nvme {p.IoSeconds:0.###}; {p.TokensPerStep / p.StepSeconds:0.#} tokens/s)");
        MachineRates r = p.Rates;
        yield return r.Layer is { } layer
            ? F($"  {(r.Measured ? "rates measured now" : "rates assumed (--assume-rates)")}: one decoder layer of the model's shape takes {layer.ForwardSeconds * 1e3:0.#} ms forward and {layer.BackwardSeconds * 1e3:0.#} ms backward with its recompute ({layer.KeptBackwardSeconds * 1e3:0.#} ms without) on this machine; the head's products at {r.GemmFlopsPerSecond / 1e9:0} GFLOP/s plus {RunPlan.NonProductShare:P0}; {p.FlopsPerStep / 1e12:0.###} TFLOP per step in all;")
            : F($"  {(r.Measured ? "rates measured now" : "rates assumed (--assume-rates)")}: products {r.GemmFlopsPerSecond / 1e9:0} GFLOP/s at the model's shape, {p.FlopsPerStep / 1e12:0.###} TFLOP per step (6 per weight per token: forward and backward, 2 more in a recompute) plus {RunPlan.NonProductShare:P0} for the rest of the kernels;");
        yield return F($"  CPU AdamW {r.AdamParamsPerSecond / 1e6:0} M params/s on every core; NVMe {r.NvmeBytesPerSecond / 1e9:0.00} GB/s for reads and writes at once{(r.Measured ? " (on nvme_dir, at the step's mix)" : "")}, {r.IoCpuSecondsPerByte * 1e9:0.000} CPU s per GB of it.");
    }

    /// <summary>This machine's rates at the plan's shape: the products at tokens x hidden x intermediate, AdamW, the drive under nvme_dir at the step's mix.</summary>
    private static MachineRates MeasureRates(Recipe r, RunPlan plan)
    {
        FineTune.Torch.Torch.SetNumThreads(FineTune.Trainer.Runs.TrainingRun.TorchThreadCount()); // the run's threads, as the run sets them
        FineTune.Torch.DType dtype = RunSetup.DTypeOf(r.Training.Precision);
        if (r.Offload.NvmeDir is string nvme)
            Directory.CreateDirectory(nvme);
        MachineRates rates = MachineRates.Measure(dtype, (long)r.Training.BatchSize * r.Dataset.SeqLen, plan.Config.HiddenSize, plan.Config.IntermediateSize,
            plan.Traffic.ReadBytes + plan.Traffic.WriteBytes > 0 ? r.Offload.NvmeDir : null, plan.Traffic);
        return plan.WithLayerTimed(rates, r);
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString("0.###", CultureInfo.InvariantCulture);

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
