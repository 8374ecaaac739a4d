using System.CommandLine;

namespace FineTune.Cli.Commands;

/// <summary>`finetune bench ...`: performance measurements printed next to the limit measured in the same run.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure performance against the machine's own limits (disk, memory bandwidth, libtorch).");
        foreach (Command sub in Subcommands())
            bench.Subcommands.Add(sub);
        return bench;
    }

    /// <summary>One line per bench subcommand (io, adam, optimizer, step, ...).</summary>
    private static IEnumerable<Command> Subcommands()
    {
        yield return BenchIoCommand.Create();
        yield return BenchAdamCommand.Create();
        yield return BenchOptimizerCommand.Create();
        yield return BenchStepCommand.Create();
        yield return BenchLoraCommand.Create();
        yield return BenchCollectivesCommand.Create();
    }
}
