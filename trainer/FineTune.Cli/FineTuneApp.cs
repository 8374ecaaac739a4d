using System.CommandLine;

namespace FineTune.Cli;

/// <summary>Builds the `finetune` root command; shared by Program.cs and the in-process CLI tests.</summary>
public static class FineTuneApp
{
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("FineTune: fine-tune large language models with optimizer state and activations on NVMe.");
        foreach (Command command in CommandList.All())
            root.Subcommands.Add(command);
        return root;
    }
}
