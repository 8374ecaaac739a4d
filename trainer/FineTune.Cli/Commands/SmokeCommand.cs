using System.CommandLine;
using System.Globalization;
using FineTune.Torch;
using FineTune.Torch.Blas;

namespace FineTune.Cli.Commands;

// Inside namespace FineTune.*, a bare `Torch` names the FineTune.Torch namespace; this alias names the class.
using Torch = FineTune.Torch.Torch;

/// <summary>
/// `finetune smoke`: checks that the installation works. Loads the native shim and libtorch, prints their
/// versions, CUDA status and the BLAS libtorch resolved, runs a matmul with autograd whose result is known by hand
/// and compares, then prints the measured matrix-product rates (fp32 and bf16 GFLOP/s on the CPU, TFLOP/s on CUDA)
/// that the planner's compute estimates should be read against.
/// </summary>
internal static class SmokeCommand
{
    public static Command Create()
    {
        var command = new Command("smoke", "Check the installation: load libtorch and run a small computation.");
        command.SetAction(_ =>
        {
            try
            {
                return Run();
            }
            catch (DllNotFoundException e)
            {
                // An installation problem, not a bug: the message says where the shim was looked for and how to build it.
                throw new UserErrorException(e.Message);
            }
        });
        return command;
    }

    private static int Run()
    {
        // The thread count a run uses, so the rates printed below are the ones a run gets.
        Torch.SetNumThreads(FineTune.Trainer.Runs.TrainingRun.TorchThreadCount());
        Console.WriteLine($"finetune {typeof(SmokeCommand).Assembly.GetName().Version}");
        Console.WriteLine($"libtorch {Torch.LibTorchVersion} (shim ABI {Torch.NativeAbiVersion}, {Torch.NumThreads} CPU threads)");
        Console.WriteLine(Torch.BuiltWithCuda
            ? $"CUDA: built with CUDA, {Cuda.DeviceCount} device(s) available"
            : "CUDA: not built with CUDA (CPU libtorch); training runs on the CPU");

        using var scope = TensorScope.Enter();
        // loss = sum(x W) with x (2, 3), W (3, 2). By hand: x W = [[4, 5], [10, 11]], loss = 30, and
        // dloss/dW[i, j] = sum over rows of x[:, i] = [[5, 5], [7, 7], [9, 9]].
        var x = Torch.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var w = Torch.FromArray(new float[] { 1, 0, 0, 1, 1, 1 }, [3, 2]);
        w.RequiresGrad = true;
        var product = Torch.MatMul(x, w);
        var loss = product.Sum();
        loss.Backward();
        var values = product.ToArray<float>();
        var gradient = w.Grad!.ToArray<float>();
        Console.WriteLine($"matmul  x W = {Format(values)}  (expected [4, 5, 10, 11])");
        Console.WriteLine($"loss    sum = {loss.Item<float>().ToString(CultureInfo.InvariantCulture)}  (expected 30)");
        Console.WriteLine($"backward dW = {Format(gradient)}  (expected [5, 5, 7, 7, 9, 9])");
        var ok = values.SequenceEqual(new float[] { 4, 5, 10, 11 })
            && gradient.SequenceEqual(new float[] { 5, 5, 7, 7, 9, 9 })
            && loss.Item<float>() == 30f;
        if (ok)
            PrintRates();
        Console.WriteLine(ok ? "smoke: OK" : "smoke: FAILED (libtorch computed wrong values)");
        return ok ? ExitCodes.Success : ExitCodes.Bug;
    }

    private static void PrintRates()
    {
        (BlasKind kind, string? path) = BlasLibrary.Resolve();
        Console.WriteLine($"BLAS: {kind}{(path is null ? "" : $" ({path})")}; OpenMP wait: {FineTune.Torch.Native.OpenMpPolicy.Description}");
        if (BlasLibrary.Advice(kind, path) is string advice)
            Console.WriteLine($"warning: {advice}");
        GemmRate f32 = GemmRate.Measure(DType.Float32), bf16 = GemmRate.Measure(DType.BFloat16);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"GEMM {f32.Size}^3 on the CPU ({Torch.NumThreads} threads): fp32 {f32.FlopsPerSecond / 1e9:0.0} GFLOP/s, bf16 {bf16.FlopsPerSecond / 1e9:0.0} GFLOP/s (bf16/fp32 {bf16.FlopsPerSecond / f32.FlopsPerSecond:0.00})"));
        if (Cuda.IsAvailable)
        {
            var device = Device.Cuda(0);
            GemmRate c32 = GemmRate.Measure(DType.Float32, 4096, 0.5, device), c16 = GemmRate.Measure(DType.BFloat16, 8192, 0.5, device);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"GEMM on {device}: fp32 {c32.Size}^3 {c32.FlopsPerSecond / 1e12:0.0} TFLOP/s, bf16 {c16.Size}^3 {c16.FlopsPerSecond / 1e12:0.0} TFLOP/s"));
        }
    }

    private static string Format(float[] values) =>
        "[" + string.Join(", ", values.Select(v => v.ToString(CultureInfo.InvariantCulture))) + "]";
}
