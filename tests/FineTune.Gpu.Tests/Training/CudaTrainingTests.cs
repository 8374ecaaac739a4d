using FineTune.Gpu.Tests.Cuda;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Gpu.Tests.Training;

/// <summary>
/// The training engine with the model on CUDA against the same seeded run on the CPU (the path every other test
/// covers): fp32 losses agree to float rounding (cuBLAS and the CPU BLAS sum in different orders; TF32 is off for
/// matmuls by libtorch's default), and bf16 on CUDA follows fp32 to bf16's precision.
/// </summary>
public sealed class CudaTrainingTests(ITestOutputHelper output)
{
    private static List<double> Losses(Device device, DType dtype, TrainingMode mode, List<Batch> batches, string? nvme = null)
    {
        using LlamaModel model = LlamaModel.Create(Config(), 7, dtype, device);
        var options = Options() with
        {
            Precision = dtype == DType.BFloat16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
            OptimizerTier = nvme is null ? FineTune.Offload.Optimizer.StateTier.Host : FineTune.Offload.Optimizer.StateTier.Nvme,
            NvmeDirectory = nvme,
            NvmeActivationLayers = nvme is null ? 0 : -1,
        };
        using ITrainer trainer = NewTrainer(model, options, mode);
        List<double> losses = Run(trainer, batches).Select(m => m.Loss).ToList();
        using (StageWeights weights = model.UseWeights(model.Parameters[0]))
            Assert.Equal(device, weights[model.Parameters[0]].Device);
        return losses;
    }

    [CudaFact]
    public void Fp32OnCudaMatchesTheCpuRunInMemoryAndOffloaded()
    {
        List<Batch> batches = Batches(6, 2);
        using var scratch = new ScratchDirectory();
        List<double> cpu = Losses(Device.Cpu, DType.Float32, TrainingMode.InMemory, batches);
        List<double> cudaInMemory = Losses(Device.Cuda(0), DType.Float32, TrainingMode.InMemory, batches);
        List<double> cudaOffloaded = Losses(Device.Cuda(0), DType.Float32, TrainingMode.Offloaded, batches, scratch.Path);
        output.WriteLine($"cpu {string.Join(" ", cpu.Select(l => l.ToString("F6")))}");
        output.WriteLine($"cuda in memory {string.Join(" ", cudaInMemory.Select(l => l.ToString("F6")))}");
        output.WriteLine($"cuda offloaded (states and activations on NVMe) {string.Join(" ", cudaOffloaded.Select(l => l.ToString("F6")))}");
        Assert.True(MaxRelativeDifference(cudaInMemory, cpu) < 1e-4, $"CUDA vs CPU {MaxRelativeDifference(cudaInMemory, cpu):E2}");
        Assert.True(MaxRelativeDifference(cudaOffloaded, cudaInMemory) < 1e-5, $"offloaded vs in memory on CUDA {MaxRelativeDifference(cudaOffloaded, cudaInMemory):E2}");
        Assert.True(cudaOffloaded[^1] < cudaOffloaded[0]);
    }

    [CudaFact]
    public void Bf16OnCudaFollowsFp32()
    {
        List<Batch> batches = Batches(6, 2);
        List<double> fp32 = Losses(Device.Cuda(0), DType.Float32, TrainingMode.Offloaded, batches);
        List<double> bf16 = Losses(Device.Cuda(0), DType.BFloat16, TrainingMode.Offloaded, batches);
        output.WriteLine($"bf16 {string.Join(" ", bf16.Select(l => l.ToString("F6")))}; max rel vs fp32 {MaxRelativeDifference(bf16, fp32):E2}");
        // bf16 keeps 8 mantissa bits: the loss follows fp32 to about a percent (the CPU test's bound).
        Assert.True(MaxRelativeDifference(bf16, fp32) < 2e-2);
        Assert.True(bf16[^1] < bf16[0]);
    }
}
