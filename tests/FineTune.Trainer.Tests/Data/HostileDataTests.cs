using FineTune.Trainer.Data;
using Xunit;

namespace FineTune.Trainer.Tests.Data;

/// <summary>Broken data files end in a UserErrorException naming the file, the line, and the problem.</summary>
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
}
