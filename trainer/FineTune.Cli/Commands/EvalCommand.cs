using System.CommandLine;
using System.Globalization;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Cli.Commands;

// Inside namespace FineTune.*, a bare `Torch` names the FineTune.Torch namespace; this alias names the class.
using Torch = FineTune.Torch.Torch;

/// <summary>
/// `finetune eval --model DIR [--adapter PEFT_DIR] (--tokens "1 2 3" | --text FILE) [--seq N] [--device D] [--dtype T]
/// [--logits-out F]`: loads an HF Llama-family folder (plus a PEFT LoRA adapter over it) and prints the mean
/// next-token cross-entropy and perplexity of the tokens (--text is encoded with the folder's tokenizer.json, BOS added
/// as the tokenizer's template says). --logits-out also writes the logits of one forward pass over all the tokens, so
/// another implementation (transformers, in tools/gpu/hf_clients.py) can be compared with FineTune on the same ids.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "HF model folder (config.json + safetensors), a checkpoint (step_N) or a run folder (its newest checkpoint).", Required = true };
        var tokens = new Option<string?>("--tokens") { Description = "Token ids separated by spaces or commas, e.g. \"1 2 3\"." };
        var text = new Option<string?>("--text") { Description = "A UTF-8 text file, encoded with the model folder's tokenizer.json." };
        var seq = new Option<int?>("--seq") { Description = "Tokens per forward pass (default: min(max_position_embeddings, 2048))." };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N (default: cuda when available).", DefaultValueFactory = _ => "auto" };
        var dtype = new Option<string>("--dtype") { Description = "Compute dtype: f32, bf16 or f16.", DefaultValueFactory = _ => "f32" };
        var adapter = new Option<string?>("--adapter") { Description = "A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) to evaluate over the model." };
        var logitsOut = new Option<string?>("--logits-out") { Description = "Also write the logits of one forward pass over all the tokens to this file: (T, V) float32, little-endian, row-major." };

        var command = new Command("eval", "Mean next-token cross-entropy and perplexity of a model on tokens or a text file.");
        foreach (Option option in new Option[] { model, adapter, tokens, text, seq, device, dtype, logitsOut })
            command.Options.Add(option);
        command.SetAction(parsed =>
        {
            string folder = CheckpointExportSource.Resolve(parsed.GetValue(model)!, "eval --model");
            string? tokenText = parsed.GetValue(tokens), textFile = parsed.GetValue(text);
            if ((tokenText is null) == (textFile is null))
                throw new UserErrorException("give exactly one of --tokens \"1 2 3\" or --text FILE.");
            FineTune.Torch.Torch.SetNumThreads(FineTune.Trainer.Runs.TrainingRun.TorchThreadCount()); // as a run would
            FineTune.Torch.Blas.BlasLibrary.WarnIfSlow(Console.Error);
            Device target = ResolveDevice(parsed.GetValue(device)!);
            DType computeType = CheckpointDTypes.Parse(parsed.GetValue(dtype)!, "--dtype");

            int[] ids = tokenText is not null ? ParseTokens(tokenText) : Encode(folder, textFile!);
            using var scope = TensorScope.Enter();
            using var loaded = LlamaModel.Load(folder, computeType, target);
            using LoraAdapters? adapters = parsed.GetValue(adapter) is string adapterFolder ? PeftAdapterReader.Load(adapterFolder, loaded) : null;
            adapters?.AttachTo(loaded);
            int sequenceLength = parsed.GetValue(seq) ?? Math.Min(loaded.Config.MaxPositionEmbeddings, 2048);
            EvaluationResult result = LlamaEvaluator.Evaluate(loaded, ids, sequenceLength);

            Console.WriteLine($"model: {folder} ({loaded.Config.ModelType}, {loaded.Config.LayerCount} layers, {loaded.ParameterCount:N0} parameters, {computeType.Name()} on {target})");
            if (adapters is not null)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"adapter: {parsed.GetValue(adapter)} (LoRA r {adapters.Config.Rank}, alpha {adapters.Config.Alpha:G6} on {string.Join(", ", adapters.Config.Targets)}; {adapters.ParameterCount:N0} parameters)"));
            Console.WriteLine($"tokens: {result.TokenCount:N0} in {result.WindowCount} window(s) of up to {sequenceLength}; {result.PredictionCount:N0} predictions");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"mean cross-entropy: {result.MeanCrossEntropy:F6} nats/token"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"perplexity: {result.Perplexity:F4}"));
            if (parsed.GetValue(logitsOut) is string logitsFile)
                WriteLogits(loaded, ids, logitsFile);
            return ExitCodes.Success;
        });
        return command;
    }

    // One window over every token (no cut at --seq: the comparison needs the same context on both sides).
    private static void WriteLogits(LlamaModel model, int[] ids, string file)
    {
        if (ids.Length > model.Config.MaxPositionEmbeddings)
            throw new UserErrorException($"--logits-out takes at most max_position_embeddings = {model.Config.MaxPositionEmbeddings} tokens, got {ids.Length}.");
        using var scope = TensorScope.Enter();
        using var noGrad = Torch.NoGrad();
        Tensor input = Torch.FromArray(ids.Select(id => (long)id).ToArray(), [1, ids.Length]).To(model.Device);
        Tensor logits = model.Forward(input).To(Device.Cpu, DType.Float32).Contiguous(); // (1, T, V) float32
        float[] values = logits.ToArray<float>();
        string? folder = Path.GetDirectoryName(Path.GetFullPath(file));
        if (folder is not null && !Directory.Exists(folder))
            throw new UserErrorException($"--logits-out {file}: the folder {folder} does not exist.");
        using (var stream = File.Create(file))
            stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        Console.WriteLine($"logits: ({ids.Length}, {model.Config.VocabSize}) float32 -> {file}");
    }

    internal static int[] ParseTokens(string text)
    {
        string[] parts = text.Split([' ', ',', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]))
                throw new UserErrorException($"--tokens: \"{parts[i]}\" is not a token id (a non-negative integer).");
        }
        return ids;
    }

    internal static Device ResolveDevice(string text)
    {
        if (text == "auto")
            return Cuda.IsAvailable ? Device.Cuda(0) : Device.Cpu;
        Device device;
        try
        {
            device = Device.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new UserErrorException($"--device: {e.Message}");
        }
        if (device.IsCuda && device.Index >= Cuda.DeviceCount)
            throw new UserErrorException($"--device {text}: this machine has {Cuda.DeviceCount} CUDA device(s); use cpu or a present device.");
        return device;
    }

    private static int[] Encode(string folder, string textFile)
    {
        FineTune.IO.InputFile.RequireRegular(textFile, "--text");
        string text = FineTune.IO.InputFile.ReadAllText(textFile, FineTune.IO.InputFile.DataLimitByteCount, "--text file", "give a smaller sample of the text");
        if (!File.Exists(Path.Combine(folder, TokenizerLoader.TokenizerFileName)))
            throw new UserErrorException($"--text needs {Path.Combine(folder, TokenizerLoader.TokenizerFileName)}, which does not exist; pass --tokens instead.");
        ITokenizer tokenizer = TokenizerLoader.Load(folder);
        return tokenizer.Encode(text, addSpecialTokens: true);
    }
}
