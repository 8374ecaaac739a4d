namespace FineTune.Trainer.Data;

/// <summary>How records become samples: format, the sequence length samples must fit, and what to do when one does
/// not (null = Split for text, Truncate for instruction and chat data), the alpaca template and the chat template
/// (null = <see cref="ChatTemplate.ChatMl"/>).</summary>
public sealed record DatasetOptions(int SequenceLength, DataFormat Format = DataFormat.Auto, OverflowPolicy? Overflow = null,
    InstructionTemplate Template = InstructionTemplate.Alpaca, ChatTemplate? Chat = null);
