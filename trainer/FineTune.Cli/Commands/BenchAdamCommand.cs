using System.CommandLine;
using FineTune.Offload.Bench;

namespace FineTune.Cli.Commands;

/// <summary>`finetune bench adam`: fused CPU AdamW vs libtorch's AdamW vs the memory-bandwidth bound (logic in FineTune.Offload.Bench).</summary>
internal static class BenchAdamCommand
{
    public static Command Create()
    {
        var paramsOption = new Option<long>("--params") { Description = "Parameters to update per step.", DefaultValueFactory = _ => 100_000_000 };
        var stepsOption = new Option<int>("--steps") { Description = "Timed steps (best is reported).", DefaultValueFactory = _ => 5 };
        var command = new Command("adam", "Params/s of FineTune's CPU AdamW vs libtorch's AdamW vs the stream-triad bound, measured now.");
        command.Options.Add(paramsOption);
        command.Options.Add(stepsOption);
        command.SetAction(parseResult =>
        {
            long count = parseResult.GetValue(paramsOption);
            if (count < 1024)
                throw new UserErrorException($"--params {count} is too small to time; use at least 1024.");
            AdamBenchResult r = AdamBench.Run(count, parseResult.GetValue(stepsOption), message => Console.Error.WriteLine($"  {message}..."));
            Console.WriteLine($"params                 {r.ParamCount:N0} ({r.ThreadCount} threads; bf16 gradients in, bf16 weights out)");
            Console.WriteLine($"stream triad           {r.TriadBytesPerSecond / 1e9:0.00} GB/s -> bound {r.BoundParamsPerSecond / 1e6:0.0} M params/s at {r.BytesPerParam} bytes/param");
            Console.WriteLine($"FineTune CPU AdamW     {r.OursParamsPerSecond / 1e6:0.0} M params/s = {r.FractionOfBound:P0} of the bound (target >= 60%)");
            Console.WriteLine($"libtorch AdamW (fp32)  {r.TorchParamsPerSecond / 1e6:0.0} M params/s");
            Console.WriteLine($"speed-up over libtorch {r.SpeedupOverTorch:0.00}x (target >= 3x)");
            return ExitCodes.Success;
        });
        return command;
    }
}
