namespace FineTune.Trainer.Data;

/// <summary>
/// One record read from a data file, before tokenization: exactly one of <see cref="Text"/>,
/// <see cref="Instruction"/> or <see cref="Messages"/> is set. <see cref="Location"/> ("file:line") names it in
/// error messages.
/// </summary>
public sealed record DataRecord(string Location, string? Text, InstructionRecord? Instruction, IReadOnlyList<ChatMessage>? Messages)
{
    public DataFormat Format => Text is not null ? DataFormat.Text : Instruction is not null ? DataFormat.Alpaca : DataFormat.Chat;
}
