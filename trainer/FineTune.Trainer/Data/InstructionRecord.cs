namespace FineTune.Trainer.Data;

/// <summary>An alpaca record (FORMATS.md 6.1): instruction, optional input, and the output the model must learn.</summary>
public sealed record InstructionRecord(string Instruction, string Input, string Output);
