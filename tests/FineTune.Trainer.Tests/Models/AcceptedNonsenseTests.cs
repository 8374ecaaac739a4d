using System.Buffers.Binary;
using System.Text;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Models;

/// <summary>
/// Issue 21's "accepted nonsense", each now refused with one sentence naming the file and the field: an unknown
/// torch_dtype, special-token ids outside the vocabulary, tie_word_embeddings true with a different lm_head.weight
/// in the file (a copy of the embedding is still fine), a safetensors entry with a repeated field, and duplicated
/// keys in tokenizer.json and tokenizer_config.json; a FIFO where tokenizer.json should be is refused unopened.
/// </summary>
public sealed class AcceptedNonsenseTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ft-nonsense-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private const string Config = "{\"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4";

    [Theory]
    [InlineData(", \"torch_dtype\": \"float99\"}", "torch_dtype \"float99\" is not a dtype transformers writes")]
    [InlineData(", \"bos_token_id\": -1}", "bos_token_id -1 is not a token id of the 64-token vocabulary")]
    [InlineData(", \"eos_token_id\": [2, 64]}", "eos_token_id 64 is not a token id of the 64-token vocabulary")]
    [InlineData(", \"vocab_size\": 32}", "key $.vocab_size appears twice")]
    public void ConfigNonsenseIsRefused(string tail, string sentence)
    {
        string message = Assert.Throws<UserErrorException>(() => LlamaConfigReader.Parse(Config + tail, "config.json")).Message;
        Assert.Contains(sentence, message);
        Assert.StartsWith("config.json: ", message);
    }

    [Fact]
    public void ATiedModelWithItsOwnDifferentHeadIsRefusedAndWithACopyLoads()
    {
        string source = ModelFixtures.Folder(ModelFixtures.GqaTied);
        foreach (bool same in new[] { true, false })
        {
            string folder = Directory.CreateDirectory(Path.Combine(_root, same ? "copy" : "different")).FullName;
            File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
            var writer = new SafetensorsWriter();
            using (SafetensorsFile original = SafetensorsFile.Open(Path.Combine(source, "model.safetensors")))
            {
                foreach (SafetensorsTensorInfo tensor in original.Tensors)
                {
                    byte[] bytes = new byte[tensor.ByteCount];
                    original.ReadTensorBytes(tensor.Name, bytes);
                    writer.Add(tensor.Name, tensor.DType, tensor.Shape.ToArray(), bytes);
                    if (tensor.Name == LlamaTensorNames.Embedding)
                    {
                        byte[] head = (byte[])bytes.Clone();
                        if (!same)
                            head[^1] ^= 0x40;
                        writer.Add(LlamaTensorNames.LmHead, tensor.DType, tensor.Shape.ToArray(), head);
                    }
                }
            }
            writer.WriteFile(Path.Combine(folder, "model.safetensors"));
            if (same)
            {
                using LlamaModel model = LlamaModel.Load(folder, DType.Float32, Device.Cpu);
                Assert.True(model.Config.TieWordEmbeddings);
            }
            else
            {
                string message = Assert.Throws<UserErrorException>(() => LlamaModel.Load(folder, DType.Float32, Device.Cpu)).Message;
                Assert.Contains("config.json says tie_word_embeddings true, but lm_head.weight", message);
                Assert.Contains("their bytes differ", message);
            }
        }
    }

    [Fact]
    public void ASafetensorsEntryWithARepeatedFieldIsRefused()
    {
        string path = Path.Combine(_root, "x.safetensors");
        byte[] header = Encoding.UTF8.GetBytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"dtype\":\"F16\",\"data_offsets\":[0,4]}}");
        byte[] file = new byte[8 + header.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        File.WriteAllBytes(path, file);
        Assert.Contains("tensor 'a' has its field 'dtype' twice", Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public async Task DuplicatedKeysInTokenizerFilesAndAFifoTokenizerAreRefused()
    {
        string fixture = Path.Combine(Path.GetDirectoryName(ModelFixtures.Folder("x"))!, "..", "tokenizers", "tokenizer.json");
        string folder = Directory.CreateDirectory(Path.Combine(_root, "tok")).FullName;
        string json = File.ReadAllText(fixture);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.Insert(1, "\"version\": \"0\", "));
        Assert.Contains("tokenizer.json: key $.version appears twice", Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(folder)).Message);

        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{\"add_bos_token\": true, \"add_bos_token\": false}");
        Assert.Contains("tokenizer_config.json: key $.add_bos_token appears twice", Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(folder)).Message);

        string fifoFolder = Directory.CreateDirectory(Path.Combine(_root, "fifo")).FullName;
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(fifoFolder, "tokenizer.json")]))
            mkfifo.WaitForExit();
        // would block forever if opened; refused by stat first
        var load = Task.Run(() => Assert.Throws<UserErrorException>(() => TokenizerLoader.Load(fifoFolder)).Message);
        Assert.Same(load, await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(20))));
        Assert.Contains("is a FIFO (named pipe), not a regular file", await load);
    }
}
