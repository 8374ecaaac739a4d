using System.Text;
using System.Text.Json;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data.Synthetic;

/// <summary>
/// A deterministic synthetic instruction task for the quickstart: short records whose answers can be checked
/// exactly, small enough that a ~1M-parameter Llama with the byte tokenizer and the Compact template ("reverse:
/// abcde\n" then "edcba" + EOS, about 25 tokens) learns them in minutes on a CPU. Records are alpaca-shaped
/// (instruction, input, output) and written as JSONL, so the normal data path reads them.
/// </summary>
public sealed class SyntheticTask
{
    private readonly SyntheticTaskKind _kind;

    public SyntheticTask(SyntheticTaskKind kind) => _kind = kind;

    /// <summary>count records drawn from SplitMix64(seed): the same arguments always give the same records.</summary>
    public List<InstructionRecord> Generate(int count, ulong seed)
    {
        if (count < 1)
            throw new UserErrorException($"the number of synthetic records must be at least 1, not {count}.");
        var random = new SplitMix64(seed);
        var records = new List<InstructionRecord>(count);
        for (int i = 0; i < count; i++)
            records.Add(_kind == SyntheticTaskKind.Reverse ? Reverse(ref random) : Add(ref random));
        return records;
    }

    /// <summary>The correct answer for a record's input (the record's output, recomputed from the input).</summary>
    public string ExpectedAnswer(InstructionRecord record)
    {
        if (_kind == SyntheticTaskKind.Reverse)
        {
            char[] letters = record.Input.ToCharArray();
            Array.Reverse(letters);
            return new string(letters);
        }
        string[] terms = record.Input.Split('+');
        return (int.Parse(terms[0], System.Globalization.CultureInfo.InvariantCulture)
                + int.Parse(terms[1], System.Globalization.CultureInfo.InvariantCulture)).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Whether a model's greedy answer is exactly right: the ids generated after the prompt are cut at the first EOS
    /// (an answer that never ends is wrong), decoded without special tokens and compared ordinally.
    /// </summary>
    public bool IsExactlyRight(InstructionRecord record, ReadOnlySpan<int> generatedIds, ITokenizer tokenizer)
    {
        int eos = tokenizer.EosId ?? throw new UserErrorException($"{tokenizer.Source}: the tokenizer has no EOS token to end answers.");
        int end = generatedIds.IndexOf(eos);
        if (end < 0)
            return false;
        return tokenizer.Decode(generatedIds[..end], skipSpecialTokens: true) == ExpectedAnswer(record);
    }

    /// <summary>Fraction of exactly right answers; answers[i] belongs to records[i].</summary>
    public double Accuracy(IReadOnlyList<InstructionRecord> records, IReadOnlyList<int[]> answers, ITokenizer tokenizer)
    {
        if (records.Count != answers.Count || records.Count == 0)
            throw new ArgumentException("need one answer per record and at least one record");
        int right = 0;
        for (int i = 0; i < records.Count; i++)
            if (IsExactlyRight(records[i], answers[i], tokenizer))
                right++;
        return (double)right / records.Count;
    }

    /// <summary>Writes records as alpaca JSONL (one {"instruction","input","output"} object per line).</summary>
    public static void WriteJsonl(string path, IEnumerable<InstructionRecord> records)
    {
        var text = new StringBuilder();
        // Relaxed escaping writes "+" as itself rather than \u002B; the records are ASCII letters, digits and '+'.
        var options = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        foreach (InstructionRecord r in records)
            text.Append(JsonSerializer.Serialize(new Dictionary<string, string> { ["instruction"] = r.Instruction, ["input"] = r.Input, ["output"] = r.Output }, options)).Append('\n');
        try
        {
            File.WriteAllText(path, text.ToString(), new UTF8Encoding(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"{path}: cannot write the synthetic data ({e.Message}).", e);
        }
    }

    private InstructionRecord Reverse(ref SplitMix64 random)
    {
        int letterCount = 3 + (int)random.NextBelow(6);
        var letters = new char[letterCount];
        for (int i = 0; i < letterCount; i++)
            letters[i] = (char)('a' + random.NextBelow(26));
        var record = new InstructionRecord("reverse", new string(letters), "");
        return record with { Output = ExpectedAnswer(record) };
    }

    private InstructionRecord Add(ref SplitMix64 random)
    {
        int a = (int)random.NextBelow(100), b = (int)random.NextBelow(100);
        var record = new InstructionRecord("add", $"{a}+{b}", "");
        return record with { Output = ExpectedAnswer(record) };
    }
}
