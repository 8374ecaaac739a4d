using FineTune.Trainer.TensorBoard;
using Xunit;

namespace FineTune.Trainer.Tests.TensorBoard;

/// <summary>
/// Byte-exact checks against FORMATS.md §1.7 (records R1-R5, produced by an independent Python encoder and
/// decoded with protoc) and §1.6 (tensorboardX's expected hparams bytes for {lr: 0.1, bsize: 4}).
/// </summary>
public sealed class EventEncodingTests
{
    private static byte[] Hex(string spaced) => Convert.FromHexString(spaced.Replace(" ", "").Replace("|", ""));

    [Fact]
    public void R1FileVersion()
    {
        byte[] record = TfRecord.Frame(EventEncoder.FileVersionEvent(1700000000.0, 0));
        Assert.Equal(Hex("1800000000000000 | a37f4b22 | 0900000040fc54d9411a0d627261696e2e4576656e743a32 | eced8f9d"), record);
    }

    [Fact]
    public void R2OldStyleScalar()
    {
        byte[] record = TfRecord.Frame(EventEncoder.ScalarsEvent(1700000001.0, 10, [new("train/loss", 1.5f)], newStyle: false));
        Assert.Equal(Hex("2000000000000000 | 29eda950 | 0900004040fc54d941100a2a130a110a0a747261696e2f6c6f7373150000c03f | 3fddc379"), record);
    }

    [Fact]
    public void R3NewStyleScalar()
    {
        byte[] record = TfRecord.Frame(EventEncoder.ScalarsEvent(1700000001.0, 10, [new("train/loss", 1.5f)]));
        Assert.Equal(Hex("3200000000000000 | 241956ec | 0900004040fc54d941100a2a250a230a0a747261696e2f6c6f7373420808012a040000c03f4a0b0a090a077363616c617273 | a5997a3f"), record);
    }

    [Fact]
    public void R4Text()
    {
        byte[] record = TfRecord.Frame(EventEncoder.TextEvent(1700000002.0, 10, "sample", "hello"));
        Assert.Equal(Hex("3f00000000000000 | 51657661 | 0900008040fc54d941100a2a320a300a1373616d706c652f746578745f73756d6d617279420f0807120412020801420568656c6c6f4a080a060a0474657874 | 3c5c688d"), record);
    }

    [Fact]
    public void R5SessionLogStart()
    {
        byte[] record = TfRecord.Frame(EventEncoder.SessionStartEvent(1700000003.0, 10));
        Assert.Equal(Hex("0f00000000000000 | 6d532b09 | 090000c040fc54d941100a3a020801 | a8f0fd32"), record);
    }

    [Fact]
    public void HParamsContentMatchesTensorBoardX()
    {
        byte[] experiment = HParamsEncoder.Experiment(
            [("lr", HParamsEncoder.ValueType.Unset), ("bsize", HParamsEncoder.ValueType.Unset)], ["accuracy", "loss"]);
        Assert.Equal(Hex("1227 2204 0a026c72 2207 0a056273697a65 2a0c 0a0a 1208 6163637572616379 2a08 0a06 1204 6c6f7373"), experiment);

        byte[] start = HParamsEncoder.SessionStart([new("lr", 0.1), new("bsize", 4)]);
        Assert.Equal(Hex("1a25 0a0f 0a026c72 1209 11 9a9999999999b93f 0a12 0a056273697a65 1209 11 0000000000001040"), start);

        Assert.Equal(Hex("2202 0801"), HParamsEncoder.SessionEnd(HParamsEncoder.SessionStatus.Success));
    }

    [Fact]
    public void HParamValuesOfEveryKindDecode()
    {
        byte[] start = HParamsEncoder.SessionStart([new("name", "llama"), new("packing", false), new("seq", 512L)]);
        // HParamsPluginData.session_start_info (3) -> three map entries (1) {key (1), value (2) = google.protobuf.Value}.
        var info = IndependentEventReader.Fields(start).Single();
        Assert.Equal(3, info.Number);
        var entries = IndependentEventReader.Fields(info.Bytes);
        Assert.Equal(3, entries.Count);
        var values = entries.Select(e => IndependentEventReader.Fields(IndependentEventReader.Fields(e.Bytes)[1].Bytes).Single()).ToList();
        Assert.Equal((3, "llama"), (values[0].Number, System.Text.Encoding.UTF8.GetString(values[0].Bytes)));
        Assert.Equal((4, 0UL), (values[1].Number, values[1].Scalar)); // bool_value false is still written (oneof).
        Assert.Equal((2, 512.0), (values[2].Number, BitConverter.Int64BitsToDouble((long)values[2].Scalar)));
    }

    [Fact]
    public void NegativeAndLargeStepsEncodeAsProtobufVarints()
    {
        var parsed = IndependentEventReader.ParseEvent(EventEncoder.ScalarsEvent(1.0, 300, [new("a", 2f)]));
        Assert.Equal(300, parsed.Step);
        var large = IndependentEventReader.ParseEvent(EventEncoder.ScalarsEvent(1.0, 1L << 40, [new("a", 2f)]));
        Assert.Equal(1L << 40, large.Step);
    }
}
