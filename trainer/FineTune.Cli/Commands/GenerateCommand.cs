using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Generation;
using FineTune.Trainer.Models;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune generate --model PATH (--prompt TEXT | --instruction TEXT [--input TEXT] | --chat TEXT [--system TEXT])`:
/// writes the model's continuation to stdout as it is decoded, then a line on stderr (tokens, why it stopped,
/// tokens/s). PATH is an HF folder, a run's output_dir or a checkpoint (<see cref="GenerationSource"/>). --prompt is
/// used as written (BOS first, as the tokenizer adds it); --instruction is formatted as the training data was
/// (compact for the synthetic tasks, alpaca otherwise, or --template); --chat is one user turn rendered with the
/// tokenizer's chat template and its generation prompt, stopping at the template's end of turn. Greedy by default;
/// --temperature with --top-k/--top-p/--seed samples. Decoding uses a KV cache (--no-kv-cache re-runs the sequence).
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "HF model folder, run output_dir (newest checkpoint) or checkpoint folder (step_N).", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "Text to continue, used as written." };
        var instruction = new Option<string?>("--instruction") { Description = "An instruction, formatted as the training prompts were (e.g. \"add: 37+45\" for the quickstart)." };
        var input = new Option<string?>("--input") { Description = "The input of --instruction (alpaca's \"input\" field)." };
        var template = new Option<InstructionTemplate?>("--template") { Description = "Prompt format of --instruction: alpaca or compact (default: what the run trained with)." };
        var chat = new Option<string?>("--chat") { Description = "A user message, rendered with the tokenizer's chat template." };
        var system = new Option<string?>("--system") { Description = "A system message before --chat." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.json, a folder holding one, or \"byte\" (default: the model's or its run's)." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy; above 0 samples from softmax(logits / temperature).", DefaultValueFactory = _ => 0 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all).", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Sample among the most likely tokens whose probability reaches p (1 = all).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the sampler.", DefaultValueFactory = _ => 0 };
        var noCache = new Option<bool>("--no-kv-cache") { Description = "Re-run the whole sequence for each token (slow; for checking)." };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N (default: cuda when available).", DefaultValueFactory = _ => "auto" };
        var dtype = new Option<string>("--dtype") { Description = "Compute dtype: f32, bf16 or f16.", DefaultValueFactory = _ => "f32" };

        var command = new Command("generate", "Generate text from a model, a run or a checkpoint: greedy or sampled, streamed as it is decoded.");
        foreach (Option option in new Option[] { model, prompt, instruction, input, template, chat, system, tokenizer, maxNew, temperature, topK, topP, seed, noCache, device, dtype })
            command.Options.Add(option);
        command.SetAction(parsed =>
        {
            string? promptText = parsed.GetValue(prompt), instructionText = parsed.GetValue(instruction), chatText = parsed.GetValue(chat);
            if (new[] { promptText, instructionText, chatText }.Count(t => t is not null) != 1)
                throw new UserErrorException("give exactly one of --prompt TEXT, --instruction TEXT or --chat TEXT.");
            if (parsed.GetValue(maxNew) < 1)
                throw new UserErrorException($"--max-new-tokens {parsed.GetValue(maxNew)} must be at least 1.");
            var sampling = new SamplingOptions(parsed.GetValue(temperature), parsed.GetValue(topK), parsed.GetValue(topP), parsed.GetValue(seed));
            sampling.Validate();

            GenerationSource source = GenerationSource.Resolve(parsed.GetValue(model)!);
            string tokenizerName = source.TokenizerName(parsed.GetValue(tokenizer));
            ITokenizer tok = TokenizerLoader.Load(tokenizerName);
            var stops = new List<int[]>();
            int[] promptIds;
            if (chatText is not null)
            {
                ChatTemplateChoice choice = ChatTemplateChoice.Detect(tokenizerName);
                Console.Error.WriteLine($"chat template: {choice.Reason}");
                var formatter = new ChatFormatter(tok, choice.Template);
                List<ChatMessage> messages = parsed.GetValue(system) is string s ? [new("system", s)] : [];
                messages.Add(new ChatMessage("user", chatText));
                try
                {
                    promptIds = formatter.PromptIds(messages);
                }
                catch (Trainer.Jinja.JinjaException e)
                {
                    throw ChatFormatter.RecordError("--chat", choice.Template, e);
                }
                if (formatter.EndOfTurnIds() is { Length: > 0 } endOfTurn)
                    stops.Add(endOfTurn);
            }
            else if (instructionText is not null)
            {
                var format = new InstructionFormatter(tok, parsed.GetValue(template) ?? source.InstructionFormat);
                promptIds = format.PromptIds(new InstructionRecord(instructionText, parsed.GetValue(input) ?? "", ""));
            }
            else
            {
                promptIds = tok.Encode(promptText!, addSpecialTokens: true);
            }

            Device target = EvalCommand.ResolveDevice(parsed.GetValue(device)!);
            DType computeType = CheckpointDTypes.Parse(parsed.GetValue(dtype)!, "--dtype");
            using var scope = TensorScope.Enter();
            using LlamaModel loaded = LlamaModel.Load(source.ModelFolder, computeType, target);
            foreach (int eos in StopIds(source.ModelFolder, loaded.Config, tok))
                stops.Add([eos]);
            if (promptIds.Any(id => id < 0 || id >= loaded.Config.VocabSize))
                throw new UserErrorException($"the prompt holds token ids outside the model's vocabulary of {loaded.Config.VocabSize}; use the tokenizer the model was trained with (--tokenizer).");

            using var generator = new LlamaGenerator(loaded);
            var decoder = new StreamingDecoder(tok);
            var options = new GenerationOptions { MaxNewTokenCount = parsed.GetValue(maxNew), Sampling = sampling, StopSequences = stops, UseKvCache = !parsed.GetValue(noCache) };
            var clock = Stopwatch.StartNew();
            var (tokens, stopped) = generator.Generate(promptIds, options, id =>
            {
                Console.Out.Write(decoder.Add(id));
                Console.Out.Flush();
            });
            Console.Out.WriteLine(decoder.Flush());
            double seconds = clock.Elapsed.TotalSeconds;
            string why = stopped ? "stopped at the end of the answer" : tokens.Count >= options.MaxNewTokenCount ? "reached --max-new-tokens" : "reached the model's context length";
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"({tokens.Count} tokens after a {promptIds.Length}-token prompt, {why}; {tokens.Count / Math.Max(seconds, 1e-9):0.0} tokens/s{(options.UseKvCache ? "" : ", no KV cache")})"));
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>EOS ids: the tokenizer's, config.json's eos_token_id and generation_config.json's (an id or a list).</summary>
    private static IEnumerable<int> StopIds(string modelFolder, LlamaConfig config, ITokenizer tokenizer)
    {
        var ids = new HashSet<int>(config.EosTokenIds);
        if (tokenizer.EosId is int eos)
            ids.Add(eos);
        string generationConfig = Path.Combine(modelFolder, "generation_config.json");
        if (File.Exists(generationConfig))
        {
            using JsonDocument document = IO.StrictJson.ReadFile(generationConfig, IO.InputFile.ConfigLimitByteCount, "generation_config.json", "fix or remove the file");
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new UserErrorException($"{generationConfig}: the file holds a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not an object; fix or remove the file.");
            if (root.TryGetProperty("eos_token_id", out JsonElement value) && value.ValueKind != JsonValueKind.Null)
            {
                foreach (JsonElement item in value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().ToArray() : [value])
                {
                    if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id) || id < 0)
                        throw new UserErrorException($"{generationConfig}: eos_token_id holds {item.GetRawText()}, which is not a token id; give an id or a list of ids (or remove the key).");
                    ids.Add(id);
                }
            }
        }
        return ids;
    }
}
