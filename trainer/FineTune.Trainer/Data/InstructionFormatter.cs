using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Data;

/// <summary>
/// Tokenizes alpaca records: ids = tokenizer prefix (BOS) + prompt + output + EOS, labels -100 over prefix and
/// prompt. The prompt and the output are encoded separately so the mask boundary is exact; the Alpaca prompt ends
/// in "\n", where every shipped pre-tokenizer splits anyway.
/// reference: torchtune torchtune/data/_messages.py AlpacaToMessages; tatsu-lab/stanford_alpaca train.py (labels).
/// </summary>
public sealed class InstructionFormatter
{
    private const string PromptInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
    private const string PromptNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";

    private readonly ITokenizer _tokenizer;
    private readonly InstructionTemplate _template;
    private readonly int _eosId;

    public InstructionFormatter(ITokenizer tokenizer, InstructionTemplate template)
    {
        _tokenizer = tokenizer;
        _template = template;
        _eosId = tokenizer.EosId ?? throw new UserErrorException(
            $"{tokenizer.Source}: the tokenizer declares no EOS token, which must end every instruction answer; name one as eos_token in tokenizer_config.json.");
    }

    /// <summary>The prompt text of a record (what precedes the output).</summary>
    public string Prompt(InstructionRecord record) => _template switch
    {
        InstructionTemplate.Alpaca => string.IsNullOrEmpty(record.Input)
            ? PromptNoInput.Replace("{instruction}", record.Instruction)
            : PromptInput.Replace("{instruction}", record.Instruction).Replace("{input}", record.Input),
        InstructionTemplate.Compact => string.IsNullOrEmpty(record.Input)
            ? $"{record.Instruction}\n"
            : $"{record.Instruction}: {record.Input}\n",
        _ => throw new ArgumentOutOfRangeException(nameof(record)),
    };

    /// <summary>Prefix + prompt ids: what a model is given before generating the answer.</summary>
    public int[] PromptIds(InstructionRecord record) => [.. _tokenizer.PrefixIds, .. _tokenizer.Encode(Prompt(record))];

    public TokenizedSample Format(InstructionRecord record)
    {
        int[] prompt = PromptIds(record);
        int[] answer = [.. _tokenizer.Encode(record.Output), _eosId];
        int[] ids = [.. prompt, .. answer];
        int[] labels = new int[ids.Length];
        Array.Fill(labels, TokenizedSample.IgnoreIndex, 0, prompt.Length);
        Array.Copy(answer, 0, labels, prompt.Length, answer.Length);
        return new TokenizedSample(ids, labels);
    }
}
