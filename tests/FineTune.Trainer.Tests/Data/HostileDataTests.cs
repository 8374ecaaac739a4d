using FineTune.IO;
using FineTune.Tests;
using FineTune.Trainer.Data;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

/// <summary>
/// Broken data files end in a UserErrorException naming the file, the line, and the problem; a key twice in a
/// record, a comment, a file over 1 GiB and a FIFO are refused too (issue 21's strict rule and bounded reads).
/// </summary>
public sealed class HostileDataTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("finetune-baddata-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private UserErrorException ReadFails(string name, string content)
    {
        string path = Path.Combine(_folder, name);
        File.WriteAllText(path, content);
        var e = Assert.Throws<UserErrorException>(() => DataFileReader.ReadFile(path, DataFormat.Auto));
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void MalformedJsonLine()
    {
        var e = ReadFails("bad.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\", \"output\": \n");
        Assert.Contains("bad.jsonl:2:", e.Message);
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void MissingFieldNamesLineAndField()
    {
        var e = ReadFails("missing.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"c\"}\n");
        Assert.Contains("missing.jsonl:3:", e.Message);
        Assert.Contains("no \"output\" field", e.Message);
    }

    [Fact]
    public void MissingFieldInJsonArrayNamesItsLine()
    {
        var e = ReadFails("missing.json", "[\n  {\"instruction\": \"a\", \"output\": \"b\"},\n  {\"instruction\": \"c\",\n   \"output\": 5}\n]");
        Assert.Contains("missing.json:3 (record 2)", e.Message);
        Assert.Contains("\"output\" must be a string", e.Message);
    }

    [Fact]
    public void EmptyFile()
    {
        var e = ReadFails("empty.jsonl", "\n  \n");
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void UnknownChatRole()
    {
        var e = ReadFails("chat.jsonl", "{\"conversations\": [{\"from\": \"robot\", \"value\": \"x\"}]}");
        Assert.Contains("chat.jsonl:1:", e.Message);
        Assert.Contains("role \"robot\"", e.Message);
    }

    [Fact]
    public void UnrecognizedRecord()
    {
        var e = ReadFails("what.jsonl", "{\"prompt\": \"x\"}");
        Assert.Contains("cannot tell the record's format", e.Message);
    }

    [Fact]
    public void JsonThatIsNotAnArray()
    {
        var e = ReadFails("object.json", "{\"instruction\": \"a\", \"output\": \"b\"}");
        Assert.Contains("array of records", e.Message);
    }

    [Theory]
    [InlineData("dup.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"c\", \"output\": \"d\", \"output\": \"e\"}\n", "dup.jsonl:2: key $.output appears twice")]
    [InlineData("dup.json", "[\n  {\"text\": \"a\"},\n  {\"text\": \"b\",\n   \"text\": \"c\"}\n]", "dup.json:3 (record 2): key $.text appears twice")]
    [InlineData("turn.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\", \"content\": \"b\"}]}", "turn.jsonl:1: key $.messages[0].content appears twice")]
    public void AKeyTwiceInARecordIsRefusedNamingTheLineAndTheKey(string name, string content, string sentence)
    {
        var e = ReadFails(name, content);
        Assert.StartsWith(Path.Combine(_folder, sentence) + " in the record, and which one counts is ambiguous; keep one of them.", e.Message);
    }

    [Fact]
    public void ACommentInAJsonArrayIsRefused()
    {
        // the one strict rule: a .json data file was read with comments skipped, unlike every other JSON file
        var e = ReadFails("commented.json", "[\n  // the first record\n  {\"text\": \"a\"}\n]");
        Assert.Contains("commented.json:2: not valid JSON", e.Message);
    }

    [Fact]
    public void AByteOrderMarkAndWindowsLineEndsStillRead()
    {
        string path = Path.Combine(_folder, "bom.jsonl");
        File.WriteAllBytes(path, [.. System.Text.Encoding.UTF8.Preamble, .. "{\"text\": \"a\"}\r\n\r\n{\"text\": \"b\"}\r\n"u8]);
        Assert.Equal(["a", "b"], DataFileReader.ReadFile(path, DataFormat.Auto).Select(r => r.Text));
        Assert.Equal([$"{path}:1", $"{path}:3"], DataFileReader.ReadFile(path, DataFormat.Auto).Select(r => r.Location));
    }

    [Fact]
    public void AnOversizedDataFileAndAFifoAreRefusedUnread()
    {
        string big = HostileFiles.Oversized(Path.Combine(_folder, "big.jsonl"), InputFile.DataLimitByteCount + 1);
        string message = HostileFiles.Refusal(() => DataFileReader.ReadFile(big, DataFormat.Auto));
        Assert.StartsWith($"data file {big} has ", message);
        Assert.EndsWith("; split it into several files in one folder and give the folder as dataset.path.", message);
        File.Delete(big);

        string fifo = HostileFiles.Fifo(Path.Combine(_folder, "fifo.jsonl"));
        Assert.StartsWith($"data file {fifo} is a FIFO (named pipe), not a regular file", HostileFiles.Refusal(() => DataFileReader.Read([_folder], DataFormat.Auto)));
    }
}
