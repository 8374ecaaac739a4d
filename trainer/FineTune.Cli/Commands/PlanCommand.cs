using System.CommandLine;
using System.Globalization;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
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
        command.Arguments.Add(recipe);
        command.Arguments.Add(overrides);
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
            foreach (string line in Lines(r, plan, baseline))
                Console.WriteLine(line);
            return ExitCodes.Success;
        });
        return command;
    }

    private static IEnumerable<string> Lines(Recipe recipe, RunPlan p, long baseline)
    {
        string compute = p.OnCuda ? "device (cuda)" : "host (cpu)";
        string optimizer = p.OptimizerTier == StateTier.Nvme ? $"nvme ({recipe.Offload.NvmeDir}), streamed through host buffers" : "host";
        string weights = p.ParametersOnNvme ? $"nvme ({recipe.Offload.NvmeDir}), streamed layer by layer through host slots" : compute;
        string activations = p.ActivationsOnNvme ? $"nvme ({recipe.Offload.NvmeDir}), staged through host buffers" : "host";
        yield return F($"model: {p.ParameterCount:N0} parameters ({p.Config.LayerCount} layers, hidden {p.Config.HiddenSize}), {p.ElementByteCount * 8}-bit weights, compute on {compute}");
        yield return "where each state lives:";
        yield return F($"  weights            {Gib(p.WeightByteCount),10} GiB  {weights}");
        yield return F($"  gradients (fp32)   {Gib(p.GradientByteCount),10} GiB  host (accumulators)");
        yield return F($"  optimizer states   {Gib(p.OptimizerStateByteCount),10} GiB  {optimizer} (fp32 master, Adam m, v)");
        yield return F($"  activations        {Gib(p.ActivationByteCount),10} GiB  {activations} (one checkpoint per layer per micro-batch)");
        yield return "predicted peak memory per tier:";
        if (p.OnCuda)
            yield return F($"  device             {Gib(p.WeightByteCount + p.WorkingByteCount),10} GiB  weights + one layer's working set");
        string budget = p.HostBudgetByteCount is long b ? F($" of host_gb {Gib(b)} GiB") : " (no host budget set: offload.host_gb is null)";
        string transient = !p.LoadingDominates ? "working set"
            : p.OpensModelLazily ? "one tensor at a time while the weight file fills"
            : "loaded weights while the engine builds";
        yield return F($"  host               {Gib(p.HostPeakByteCount(baseline)),10} GiB{budget}: pools {Gib(p.PoolByteCount)} + {transient} {Gib(p.TransientByteCount)} + runtime {Gib(baseline)}");
        yield return F($"  nvme               {Gib(p.NvmeResidentByteCount),10} GiB  swap under nvme_dir; each checkpoint adds {Gib(p.CheckpointByteCount)} GiB x keep_last {recipe.Checkpoint.KeepLast} in {recipe.Checkpoint.Dir}");
        yield return F($"nvme traffic per step: read {Gib(p.NvmeReadBytesPerStep)} GiB, write {Gib(p.NvmeWriteBytesPerStep)} GiB ({p.TokensPerStep:N0} tokens per step)");
        yield return F($"predicted step time: {p.StepSeconds:0.###} s = compute {p.ComputeSeconds:0.###} + optimizer {p.OptimizerSeconds:0.###} + nvme {p.IoSeconds:0.###} ({p.TokensPerStep / p.StepSeconds:0} tokens/s)");
        yield return F($"  assumes: {(p.OnCuda ? $"{RunPlan.AssumedCudaFlopsPerSecond / 1e12:0} TFLOP/s on the GPU" : $"{RunPlan.AssumedCpuFlopsPerSecondPerCore / 1e9:0} GFLOP/s per CPU core x {Environment.ProcessorCount}")}, 8 FLOPs per parameter per token (forward, recompute, backward),");
        yield return F($"  CPU AdamW {RunPlan.AssumedCpuAdamWParamsPerSecondPerCore / 1e6:0}M params/s per core, NVMe {RunPlan.AssumedNvmeBytesPerSecond / 1e9:0} GB/s each way, and no overlap (an upper bound);");
        yield return "  measure your machine with `finetune bench io` and `finetune bench adam`.";
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString("0.###", CultureInfo.InvariantCulture);

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
