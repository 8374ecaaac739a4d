namespace FineTune.Trainer.Data;

/// <summary>
/// How an alpaca record becomes a prompt. The output (plus EOS) follows the prompt directly and is the only part
/// trained; the prompt's labels are -100.
/// </summary>
public enum InstructionTemplate
{
    /// <summary>
    /// torchtune's AlpacaToMessages (FORMATS.md 6.2): "Below is an instruction ... ### Response:\n", with the
    /// "### Input:" section only when input is non-empty.
    /// </summary>
    Alpaca,

    /// <summary>
    /// "{instruction}: {input}\n" (or "{instruction}\n" without input): a short prompt for tiny models and short
    /// sequences, used by the quickstart's synthetic task.
    /// </summary>
    Compact,
}
