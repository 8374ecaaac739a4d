using System.CommandLine;
using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune data synth --out FILE --count N [--task reverse|add] [--seed S]` writes the quickstart's synthetic
/// alpaca JSONL; `finetune data stats --tokenizer PATH --data FILE... --seq-len T` tokenizes data files and prints
/// the dataset statistics (samples, tokens, truncated, split, dropped) and the chat template used.
/// </summary>
internal static class DataCommand
{
    public static Command Create()
    {
        var data = new Command("data", "Generate synthetic training data or inspect a dataset.");
        data.Subcommands.Add(Synth());
        data.Subcommands.Add(Stats());
        return data;
    }

    private static Command Synth()
    {
        var outOption = new Option<string>("--out") { Description = "JSONL file to write.", Required = true };
        var countOption = new Option<int>("--count") { Description = "Number of records.", DefaultValueFactory = _ => 2000 };
        var taskOption = new Option<SyntheticTaskKind>("--task") { Description = "reverse (letters) or add (two-digit numbers).", DefaultValueFactory = _ => SyntheticTaskKind.Reverse };
        var seedOption = new Option<ulong>("--seed") { Description = "Seed of the generator.", DefaultValueFactory = _ => 1 };
        var command = new Command("synth", "Write a deterministic synthetic instruction task (alpaca JSONL) whose answers can be checked.");
        foreach (Option option in new Option[] { outOption, countOption, taskOption, seedOption })
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            var task = new SyntheticTask(parse.GetValue(taskOption));
            List<InstructionRecord> records = task.Generate(parse.GetValue(countOption), parse.GetValue(seedOption));
            string path = parse.GetValue(outOption)!;
            SyntheticTask.WriteJsonl(path, records);
            Console.WriteLine($"wrote {records.Count} {parse.GetValue(taskOption).ToString().ToLowerInvariant()} records to {path}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Stats()
    {
        var tokenizerOption = new Option<string>("--tokenizer") { Description = "tokenizer.json, a folder holding one, or \"byte\".", Required = true };
        var dataOption = new Option<string[]>("--data") { Description = "Data files or folders (.txt, .json, .jsonl).", Required = true, AllowMultipleArgumentsPerToken = true };
        var seqOption = new Option<int>("--seq-len") { Description = "Sequence length samples must fit.", DefaultValueFactory = _ => 512 };
        var formatOption = new Option<DataFormat>("--format") { Description = "auto, text, alpaca or chat.", DefaultValueFactory = _ => DataFormat.Auto };
        var templateOption = new Option<InstructionTemplate>("--template") { Description = "alpaca or compact prompt for instruction data.", DefaultValueFactory = _ => InstructionTemplate.Alpaca };
        var command = new Command("stats", "Tokenize data files and print what training would see.");
        foreach (Option option in new Option[] { tokenizerOption, dataOption, seqOption, formatOption, templateOption })
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            string tokenizerPath = parse.GetValue(tokenizerOption)!;
            ITokenizer tokenizer = TokenizerLoader.Load(tokenizerPath);
            List<DataRecord> records = DataFileReader.Read(parse.GetValue(dataOption)!, parse.GetValue(formatOption));
            ChatTemplateChoice? chat = records.Any(r => r.Format == DataFormat.Chat) ? ChatTemplateChoice.Detect(tokenizerPath) : null;
            var options = new DatasetOptions(parse.GetValue(seqOption), parse.GetValue(formatOption), null, parse.GetValue(templateOption), chat?.Template);
            TokenizedDataset dataset = TokenizedDataset.Build(records, tokenizer, options);
            if (chat is not null)
                Console.WriteLine($"chat template: {chat.Reason}");
            Console.WriteLine(dataset.Statistics);
            return ExitCodes.Success;
        });
        return command;
    }
}
