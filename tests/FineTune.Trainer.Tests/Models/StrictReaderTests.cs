using FineTune.IO;
using FineTune.Tests;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Training.Adapters;
using Xunit;

namespace FineTune.Trainer.Tests.Models;

/// <summary>
/// Issue 21's one strict JSON rule and bounded reads, for the readers that had neither: adapter_config.json,
/// chat_template.json and chat_template.jinja, and a LoRA checkpoint's base.json. Each refuses, with one sentence
/// naming the file (and the key): a key written twice, a file over its bound (sparse, so no disk is used), and a
/// FIFO where the file should be (refused unopened: opening it would block).
/// </summary>
public sealed class StrictReaderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ft-strict-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>(file name, its content with a key twice or null for a non-JSON file, the key's path, a read of the file in a folder).</summary>
    private static (string File, string? Duplicated, string Key, Action<string, string> Read) Reader(string name) => name switch
    {
        "adapter_config.json" => (name, "{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"], \"r\": 8}", "$.r",
            (folder, _) => PeftAdapterConfig.Read(folder)),
        "chat_template.json" => (name, "{\"chat_template\": [{\"name\": \"default\", \"template\": \"a\", \"template\": \"b\"}]}", "$.chat_template[0].template",
            (folder, _) => ChatTemplateChoice.Detect(folder)),
        "chat_template.jinja" => (name, null, "", (folder, _) => ChatTemplateChoice.Detect(folder)),
        "base.json" => (name, new BaseFingerprint { Source = "/m", IsFolder = true, Files = [] }.ToJson().Replace("\"source\"", "\"is_folder\": false, \"source\""), "$.is_folder",
            (_, path) => BaseFingerprint.Read(path)),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData("adapter_config.json")]
    [InlineData("chat_template.json")]
    [InlineData("chat_template.jinja")]
    [InlineData("base.json")]
    public void AKeyTwiceAnOversizedFileAndAFifoAreRefusedNamingTheFile(string name)
    {
        var (file, duplicated, key, read) = Reader(name);
        string folder = Directory.CreateDirectory(Path.Combine(_root, name)).FullName;
        string path = Path.Combine(folder, file);
        if (duplicated is not null)
        {
            File.WriteAllText(path, duplicated);
            AssertOneSentence($"{path}: key {key} appears twice, and which one counts is ambiguous; ", HostileFiles.Refusal(() => read(folder, path)));
        }

        HostileFiles.Oversized(path, InputFile.ConfigLimitByteCount + 1);
        string oversized = HostileFiles.Refusal(() => read(folder, path));
        AssertOneSentence($"{file} {path} has ", oversized);
        Assert.Contains(" bytes, more than the ", oversized);

        HostileFiles.Fifo(path);
        AssertOneSentence($"{file} {path} is a FIFO (named pipe), not a regular file", HostileFiles.Refusal(() => read(folder, path)));
    }

    [Fact]
    public void AChatTemplateThatIsNeitherTextNorAListIsRefused()
    {
        // a number or an object where the template goes used to fall back to ChatML silently
        string path = Path.Combine(_root, ChatTemplateChoice.JsonFileName);
        File.WriteAllText(path, "{\"chat_template\": 42}");
        AssertOneSentence($"{path}: chat_template is a JSON number; it must be a Jinja string", HostileFiles.Refusal(() => ChatTemplateChoice.Detect(_root)));
        File.WriteAllText(path, "[\"{{ messages }}\"]");
        AssertOneSentence($"{path}: the file holds a JSON array, not an object with a chat_template", HostileFiles.Refusal(() => ChatTemplateChoice.Detect(_root)));
    }

    [Fact]
    public void AFifoAmongABasesFilesIsRefusedUnopened()
    {
        // export --merge re-reads the recorded base's files whole
        File.WriteAllText(Path.Combine(_root, "config.json"), "{}");
        string fifo = HostileFiles.Fifo(Path.Combine(_root, "model.safetensors"));
        AssertOneSentence($"base file {fifo} is a FIFO (named pipe), not a regular file",
            HostileFiles.Refusal(() => BaseFingerprint.OfFolderFiles(_root, ["config.json", "model.safetensors"])));
    }

    private static void AssertOneSentence(string start, string message)
    {
        Assert.StartsWith(start, message);
        Assert.EndsWith(".", message);
        Assert.DoesNotContain('\n', message);
    }
}
