namespace FineTune.Trainer.Data;

/// <summary>What the records of a data file are. Auto decides from the file: .txt is Text; in JSON records the
/// first record's fields decide (messages/conversations: Chat; instruction: Alpaca; text: Text).</summary>
public enum DataFormat
{
    Auto,
    /// <summary>Plain documents: a .txt file is one document, a JSON record's "text" field is one.</summary>
    Text,
    /// <summary>Alpaca records: "instruction", "output", optional "input".</summary>
    Alpaca,
    /// <summary>OpenAI "messages" [{role, content}] or ShareGPT "conversations" [{from, value}].</summary>
    Chat,
}
