using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace FineTune.Trainer.Data;

/// <summary>
/// Reads data files into <see cref="DataRecord"/>s: .jsonl (one JSON object per line, blank lines skipped), .json
/// (an array of objects), anything else as one plain-text document (UTF-8). A folder means its .txt, .json and .jsonl
/// files in ordinal name order. Every problem (malformed JSON, missing or mistyped field, unknown chat role, empty
/// file) is a <see cref="UserErrorException"/> naming the file, the line and the fix. Records are held in memory:
/// fine-tuning sets are small next to the model; this is not a streaming reader for pre-training corpora.
/// A data file must be a regular file (a FIFO is refused before it is opened) of at most 1 GiB
/// (<see cref="IO.InputFile.DataLimitByteCount"/>; a larger set is several files in a folder), and its JSON follows
/// the one strict rule (<see cref="IO.StrictJson"/>: no comments, no trailing commas, no key twice in a record).
/// </summary>
public static class DataFileReader
{
    public static List<DataRecord> Read(IEnumerable<string> paths, DataFormat format)
    {
        var records = new List<DataRecord>();
        foreach (string path in paths)
        {
            if (Directory.Exists(path))
            {
                string[] files = Directory.GetFiles(path)
                    .Where(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal).ToArray();
                if (files.Length == 0)
                    throw new UserErrorException($"{path}: the folder holds no .txt, .json or .jsonl data files.");
                foreach (string file in files)
                    records.AddRange(ReadFile(file, format));
            }
            else
            {
                records.AddRange(ReadFile(path, format));
            }
        }
        return records;
    }

    public static List<DataRecord> ReadFile(string path, DataFormat format)
    {
        if (!File.Exists(path))
            throw new UserErrorException($"{path}: no such data file.");
        byte[] bytes = IO.InputFile.ReadAllBytes(path, IO.InputFile.DataLimitByteCount, "data file",
            "split it into several files in one folder and give the folder as dataset.path");
        ReadOnlyMemory<byte> utf8 = IO.InputFile.WithoutByteOrderMark(bytes);
        if (!Utf8.IsValid(utf8.Span))
            utf8 = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(utf8.Span)); // invalid bytes become U+FFFD, as File.ReadAllText read them
        if (IsBlank(utf8.Span))
            throw new UserErrorException($"{path}: the data file is empty; give a file with at least one record or document.");
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            return ReadJsonLines(path, utf8, format);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return ReadJsonArray(path, utf8, format);
        if (format is not (DataFormat.Auto or DataFormat.Text))
            throw new UserErrorException($"{path}: a plain-text file cannot hold {format} records; use a .json or .jsonl file, or the text format.");
        return [new DataRecord($"{path}", Encoding.UTF8.GetString(utf8.Span), null, null)];
    }

    /// <summary>One record per line, each parsed by the strict JSON rule (<see cref="IO.StrictJson"/>: no comments, no key twice) straight from the file's UTF-8.</summary>
    private static List<DataRecord> ReadJsonLines(string path, ReadOnlyMemory<byte> utf8, DataFormat format)
    {
        var records = new List<DataRecord>();
        int lineNumber = 0;
        for (ReadOnlyMemory<byte> rest = utf8; !rest.IsEmpty;)
        {
            lineNumber++;
            int end = rest.Span.IndexOf((byte)'\n');
            ReadOnlyMemory<byte> line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
            if (IsBlank(line.Span))
                continue;
            string location = $"{path}:{lineNumber}";
            try
            {
                using JsonDocument document = JsonDocument.Parse(line, IO.StrictJson.Options);
                RefuseDuplicateKey(document.RootElement, location);
                format = ResolveFormat(format, document.RootElement, location);
                records.Add(ToRecord(document.RootElement, format, location));
            }
            catch (JsonException e)
            {
                throw new UserErrorException($"{location}: not valid JSON ({FirstSentence(e.Message)}); each line of a .jsonl file must be one JSON object.", e);
            }
        }
        return records;
    }

    private static List<DataRecord> ReadJsonArray(string path, ReadOnlyMemory<byte> utf8, DataFormat format)
    {
        var records = new List<DataRecord>();
        var reader = new Utf8JsonReader(utf8.Span, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = IO.StrictJson.Options.MaxDepth });
        // line numbers counted forward from the previous record, not from the start each time
        long countedTo = 0;
        int line = 1;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                throw new UserErrorException($"{path}: a .json data file must hold an array of records ([{{...}}, ...]); use .jsonl for one record per line.");
            int index = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                line += utf8.Span[(int)countedTo..(int)reader.TokenStartIndex].Count((byte)'\n');
                countedTo = reader.TokenStartIndex;
                string location = $"{path}:{line} (record {++index})";
                using JsonDocument document = JsonDocument.ParseValue(ref reader);
                RefuseDuplicateKey(document.RootElement, location);
                format = ResolveFormat(format, document.RootElement, location);
                records.Add(ToRecord(document.RootElement, format, location));
            }
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{path}:{e.LineNumber + 1}: not valid JSON ({FirstSentence(e.Message)}).", e);
        }
        if (records.Count == 0)
            throw new UserErrorException($"{path}: the array holds no records.");
        return records;
    }

    private static void RefuseDuplicateKey(JsonElement record, string location)
    {
        if (IO.StrictJson.FirstDuplicateKey(record) is string key)
            throw new UserErrorException($"{location}: key {key} appears twice in the record, and which one counts is ambiguous; keep one of them.");
    }

    /// <summary>Only JSON whitespace (space, tab, CR, LF): a blank line or an empty file.</summary>
    private static bool IsBlank(ReadOnlySpan<byte> utf8) => utf8.IndexOfAnyExcept(" \t\r\n"u8) < 0;

    private static DataFormat ResolveFormat(DataFormat format, JsonElement record, string location)
    {
        if (format != DataFormat.Auto)
            return format;
        if (record.ValueKind != JsonValueKind.Object)
            throw new UserErrorException($"{location}: a record must be a JSON object.");
        if (record.TryGetProperty("messages", out _) || record.TryGetProperty("conversations", out _))
            return DataFormat.Chat;
        if (record.TryGetProperty("instruction", out _))
            return DataFormat.Alpaca;
        if (record.TryGetProperty("text", out _))
            return DataFormat.Text;
        throw new UserErrorException($"{location}: cannot tell the record's format; it needs \"messages\" or \"conversations\" (chat), \"instruction\" and \"output\" (alpaca), or \"text\".");
    }

    private static DataRecord ToRecord(JsonElement record, DataFormat format, string location)
    {
        if (record.ValueKind != JsonValueKind.Object)
            throw new UserErrorException($"{location}: a record must be a JSON object.");
        switch (format)
        {
            case DataFormat.Text:
                return new DataRecord(location, RequiredString(record, "text", location, "text"), null, null);
            case DataFormat.Alpaca:
                string instruction = RequiredString(record, "instruction", location, "alpaca");
                string output = RequiredString(record, "output", location, "alpaca");
                string input = record.TryGetProperty("input", out JsonElement i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : "";
                return new DataRecord(location, null, new InstructionRecord(instruction, input, output), null);
            default:
                return new DataRecord(location, null, null, ReadMessages(record, location));
        }
    }

    private static List<ChatMessage> ReadMessages(JsonElement record, string location)
    {
        bool openAi = record.TryGetProperty("messages", out JsonElement list);
        if (!openAi && !record.TryGetProperty("conversations", out list))
            throw new UserErrorException($"{location}: the chat record has no \"messages\" (OpenAI) or \"conversations\" (ShareGPT) field.");
        string field = openAi ? "messages" : "conversations";
        if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            throw new UserErrorException($"{location}: \"{field}\" must be a non-empty array of turns.");
        var messages = new List<ChatMessage>();
        int turn = 0;
        foreach (JsonElement item in list.EnumerateArray())
        {
            string where = $"{field}[{turn++}]";
            string role = RequiredString(item, openAi ? "role" : "from", location, where);
            string content = RequiredString(item, openAi ? "content" : "value", location, where);
            string mapped = role switch
            {
                "system" => "system",
                "user" or "human" => "user",
                "assistant" or "gpt" => "assistant",
                _ => throw new UserErrorException($"{location}: {where} has role \"{role}\"; supported roles are system, user/human, assistant/gpt."),
            };
            messages.Add(new ChatMessage(mapped, content));
        }
        return messages;
    }

    private static string RequiredString(JsonElement element, string name, string location, string what)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out JsonElement value))
            throw new UserErrorException($"{location}: the {what} record has no \"{name}\" field.");
        if (value.ValueKind != JsonValueKind.String)
            throw new UserErrorException($"{location}: \"{name}\" must be a string, not {value.ValueKind.ToString().ToLowerInvariant()}.");
        return value.GetString()!;
    }

    private static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (cut >= 0 ? message[..cut] : message).TrimEnd('.', ' ');
    }
}
