using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>The refusals of an <see cref="AdapterEngine"/>, made before anything is allocated.</summary>
internal static class AdapterEngineChecks
{
    public static void Check(LlamaModel model, LoraAdapters adapters, TrainingOptions options)
    {
        if (!model.Device.IsCpu)
            throw new UserErrorException($"LoRA training runs on the CPU for now (this model is on {model.Device}); use training.device=cpu.");
        DType expected = options.Precision switch
        {
            PrecisionMode.Float32 => DType.Float32,
            PrecisionMode.BFloat16 => DType.BFloat16,
            _ => DType.Float16,
        };
        if (model.DType != expected)
            throw new UserErrorException($"precision {options.Precision} needs the base in {expected}, but it was loaded as {model.DType}; load it with that dtype or change precision.");
        if (options.Precision == PrecisionMode.Float16)
            throw new UserErrorException("LoRA trains over a bf16 or fp32 base; fp16 matmuls have no CPU kernel in this libtorch; use precision bf16 or fp32.");
        if (adapters.AttachedTo is { } other && !ReferenceEquals(other, model))
            throw new ArgumentException("the adapters are attached to another model; detach them first.", nameof(adapters));
        if (adapters.Parameters.Any(p => !p.Tensor.Device.IsCpu))
            throw new UserErrorException("LoRA training runs on the CPU for now: load the adapters on the CPU.");
    }

    /// <summary>Refusals of the plan: too few slots for a streamed base, or more host memory than host_gb allows.</summary>
    public static void CheckPlan(AdapterPlan plan, TrainingOptions options)
    {
        if (plan.BaseOnNvme && options.ParameterSlots < 2)
            throw new UserErrorException($"a base on NVMe needs at least 2 layer slots (one computing, one being read), got {options.ParameterSlots}.");
        if (plan.UsesNvme && string.IsNullOrEmpty(options.NvmeDirectory))
            throw new UserErrorException("this LoRA plan keeps state on NVMe but nvme_dir is not set; set offload.nvme_dir to a directory on a fast local drive.");
        long total = plan.HostByteCount;
        if (total > options.HostBudgetByteCount)
            throw new UserErrorException(
                $"LoRA training needs {Gib(total)} of host memory (base {(plan.BaseOnNvme ? "slots" : "weights")}, activations and adapter states {Gib(plan.PoolByteCount)}, trained tensors {Gib(plan.TrainedTensorByteCount)}) " +
                $"but host_gb allows {Gib(options.HostBudgetByteCount)}; raise host_gb, put the base (offload.params) or activations on NVMe, or lower the rank.");
    }

    private static string Gib(long byteCount) => $"{byteCount / (double)(1L << 30):0.###} GiB";
}
