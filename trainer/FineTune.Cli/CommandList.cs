using System.CommandLine;
using FineTune.Cli.Commands;

namespace FineTune.Cli;

/// <summary>Every subcommand of `finetune`, in the order `--help` lists them. Add one line per new command.</summary>
internal static class CommandList
{
    public static IEnumerable<Command> All()
    {
        yield return SmokeCommand.Create();
        yield return BenchCommand.Create();
        yield return ValidateCommand.Create();
        yield return TokenizeCommand.Create();
        yield return DataCommand.Create();
        yield return EvalCommand.Create();
        yield return GenerateCommand.Create();
        yield return PlotCommand.Create();
        yield return ExportCommand.Create();
        yield return RunCommand.Create();
        yield return ResumeCommand.Create();
        yield return PlanCommand.Create();
    }
}
