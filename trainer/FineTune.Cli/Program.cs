using FineTune.Cli;

// The `finetune` command. Each subcommand lives in Commands/<Name>Command.cs and exposes Create();
// CommandList names them, FineTuneApp builds the root, ExitCodes maps outcomes to exit codes.
return ExitCodes.Run(FineTuneApp.CreateRoot(), args);
