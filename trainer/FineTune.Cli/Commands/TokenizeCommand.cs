using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune tokenize --tokenizer PATH (--text "..." | --decode "1 2 3" | --bench)`: prints the ids of a text, the
/// text of ids, or the tokenizer's throughput. PATH is a tokenizer.json, a folder holding one, or "byte".
/// The bench encodes --bench-mb of text (a file given with --bench-file, else generated mixed English/code/Unicode
/// text) in 4 KiB documents on one thread, checks that it decodes back, and prints MB/s next to the speed of plain
/// UTF-8 encoding of the same text measured in the same run (the floor any tokenizer pays), as a ratio.
/// </summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var tokenizerOption = new Option<string>("--tokenizer") { Description = "tokenizer.json, a folder holding one, or \"byte\".", Required = true };
        var textOption = new Option<string?>("--text") { Description = "Text to encode; prints its ids." };
        var decodeOption = new Option<string?>("--decode") { Description = "Ids to decode, separated by spaces or commas; prints the text." };
        var specialOption = new Option<bool>("--special") { Description = "Encode: add the post-processor's tokens (e.g. BOS). Decode: keep special tokens (default: skip them)." };
        var benchOption = new Option<bool>("--bench") { Description = "Measure encoding throughput in MB/s." };
        var benchMbOption = new Option<int>("--bench-mb") { Description = "Megabytes of text to encode for --bench.", DefaultValueFactory = _ => 10 };
        var benchFileOption = new Option<string?>("--bench-file") { Description = "Text file to repeat for --bench (default: generated text)." };
        var command = new Command("tokenize", "Encode text to token ids, decode ids to text, or measure tokenizer speed.");
        foreach (Option option in new Option[] { tokenizerOption, textOption, decodeOption, specialOption, benchOption, benchMbOption, benchFileOption })
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            ITokenizer tokenizer = TokenizerLoader.Load(parse.GetValue(tokenizerOption)!);
            string? text = parse.GetValue(textOption);
            string? decode = parse.GetValue(decodeOption);
            bool special = parse.GetValue(specialOption);
            if (parse.GetValue(benchOption))
                return Bench(tokenizer, parse.GetValue(benchMbOption), parse.GetValue(benchFileOption));
            if ((text is null) == (decode is null))
                throw new UserErrorException("give exactly one of --text \"...\", --decode \"1 2 3\" or --bench.");
            if (text is not null)
            {
                Console.WriteLine(string.Join(' ', tokenizer.Encode(text, addSpecialTokens: special)));
                return ExitCodes.Success;
            }
            Console.WriteLine(tokenizer.Decode(ParseIds(decode!, tokenizer), skipSpecialTokens: !special));
            return ExitCodes.Success;
        });
        return command;
    }

    private static int[] ParseIds(string text, ITokenizer tokenizer)
    {
        string[] parts = text.Split([' ', ',', '\t', '[', ']'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0 || ids[i] >= tokenizer.VocabularyCount)
                throw new UserErrorException($"--decode: \"{parts[i]}\" is not a token id of {tokenizer.Source} (0 to {tokenizer.VocabularyCount - 1}).");
        }
        return ids;
    }

    private static int Bench(ITokenizer tokenizer, int megabytes, string? file)
    {
        if (megabytes < 1)
            throw new UserErrorException($"--bench-mb must be at least 1, not {megabytes}.");
        string seed = file is null ? BenchText.Generate(1 << 20) : ReadBenchFile(file);
        List<string> documents = BenchText.Documents(seed, megabytes * 1_000_000L, documentChars: 4096);
        long byteCount = documents.Sum(d => (long)Encoding.UTF8.GetByteCount(d));

        // Warm-up (JIT, regex compilation, BPE cache) on the first 1%, not timed.
        foreach (string document in documents.Take(Math.Max(1, documents.Count / 100)))
            tokenizer.Encode(document);

        var clock = Stopwatch.StartNew();
        long utf8Total = 0;
        foreach (string document in documents)
            utf8Total += Encoding.UTF8.GetBytes(document).Length;
        double utf8Seconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        long tokenCount = 0;
        var encoded = new List<int[]>(documents.Count);
        foreach (string document in documents)
        {
            int[] ids = tokenizer.Encode(document);
            tokenCount += ids.Length;
            encoded.Add(ids);
        }
        double encodeSeconds = clock.Elapsed.TotalSeconds;

        clock.Restart();
        int mismatches = 0;
        for (int i = 0; i < documents.Count; i++)
            if (tokenizer.Decode(encoded[i]) != documents[i])
                mismatches++;
        double decodeSeconds = clock.Elapsed.TotalSeconds;

        double megabyteCount = byteCount / 1e6;
        double encodeRate = megabyteCount / encodeSeconds, utf8Rate = utf8Total / 1e6 / utf8Seconds;
        Console.WriteLine($"tokenizer        {tokenizer.Source} ({tokenizer.VocabularyCount} ids)");
        Console.WriteLine($"text             {megabyteCount:F1} MB in {documents.Count} documents ({(file is null ? "generated" : file)}), {tokenCount} tokens, {byteCount / (double)tokenCount:F2} bytes/token");
        Console.WriteLine($"encode           {encodeSeconds:F2} s, {encodeRate:F1} MB/s, {tokenCount / encodeSeconds / 1e6:F2} M tokens/s (one thread)");
        Console.WriteLine($"decode           {decodeSeconds:F2} s, {megabyteCount / decodeSeconds:F1} MB/s; {mismatches} of {documents.Count} documents differ after the round trip"
            + (mismatches > 0 ? " (expected only when the vocabulary lacks byte tokens or the normalizer changes the text)" : ""));
        Console.WriteLine($"limit (UTF-8)    {utf8Rate:F0} MB/s for Encoding.UTF8.GetBytes of the same text; encode is {encodeRate / utf8Rate:F4} of it");
        return ExitCodes.Success;
    }

    private static string ReadBenchFile(string file)
    {
        if (!File.Exists(file))
            throw new UserErrorException($"{file}: no such --bench-file.");
        string text = FineTune.IO.InputFile.ReadAllText(file, FineTune.IO.InputFile.DataLimitByteCount, "--bench-file", "give a smaller sample of the text");
        return text.Length > 0 ? text : throw new UserErrorException($"{file}: the --bench-file is empty.");
    }
}
