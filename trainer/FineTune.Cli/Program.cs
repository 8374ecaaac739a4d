using System.CommandLine;
using FineTune.Cli;
using FineTune.Cli.Commands;

// The `finetune` command. Each subcommand lives in Commands/<Name>Command.cs and exposes Create().
var root = new RootCommand("FineTune: fine-tune large language models with optimizer state and activations on NVMe.");
foreach (Command command in CommandList.All())
    root.Subcommands.Add(command);
return ExitCodes.Run(root, args);
