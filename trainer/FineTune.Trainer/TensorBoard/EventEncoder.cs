namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// Serializes the TensorBoard `Event` messages FineTune writes (payloads only, no TFRecord framing).
/// Field numbers and encodings follow FORMATS.md §1.3-1.5 (tensorboard/compat/proto/event.proto, summary.proto,
/// tensor.proto); the R1-R5 hex examples of §1.7 are reproduced byte for byte by the tests.
/// Proto3 omits default values, so step 0 is not written.
/// </summary>
internal static class EventEncoder
{
    public const string FileVersion = "brain.Event:2";
    public const string TextTagSuffix = "/text_summary";

    // Event
    private const int EventWallTime = 1, EventStep = 2, EventFileVersion = 3, EventSummary = 5, EventSessionLog = 7;
    // Summary / Summary.Value
    private const int SummaryValue = 1;
    private const int ValueTag = 1, ValueSimpleValue = 2, ValueTensor = 8, ValueMetadata = 9;
    // SummaryMetadata / PluginData
    private const int MetadataPluginData = 1, PluginName = 1, PluginContent = 2;
    // TensorProto / TensorShapeProto
    private const int TensorDtype = 1, TensorShape = 2, TensorFloatVal = 5, TensorStringVal = 8;
    private const int ShapeDim = 2, DimSize = 1;
    private const int DtFloat = 1, DtString = 7;
    // SessionLog
    private const int SessionLogStatus = 1, SessionLogStart = 1;

    /// <summary>The first event of every file: `Event{wall_time, file_version="brain.Event:2"}`.</summary>
    public static byte[] FileVersionEvent(double wallTime, long step) =>
        Event(wallTime, step).String(EventFileVersion, FileVersion).ToArray();

    /// <summary>
    /// Scalars in one Summary. New style (default): rank-0 DT_FLOAT tensor + "scalars" plugin metadata on every
    /// value (what torchtune writes); old style: `simple_value` (what PyTorch's add_scalar writes by default).
    /// </summary>
    public static byte[] ScalarsEvent(double wallTime, long step, IEnumerable<KeyValuePair<string, float>> values, bool newStyle = true) =>
        Event(wallTime, step).Message(EventSummary, summary =>
        {
            foreach (var (tag, value) in values)
                summary.Message(SummaryValue, v => WriteScalarValue(v, tag, value, newStyle));
        }).ToArray();

    /// <summary>PyTorch `add_text(name, text, step)`: tag `name/text_summary`, a DT_STRING tensor of shape [1], plugin "text" (§1.5).</summary>
    public static byte[] TextEvent(double wallTime, long step, string name, string text) =>
        Event(wallTime, step).Message(EventSummary, summary => summary.Message(SummaryValue, v =>
        {
            v.String(ValueTag, name + TextTagSuffix);
            v.Message(ValueTensor, tensor =>
            {
                tensor.Varint(TensorDtype, DtString);
                tensor.Message(TensorShape, shape => shape.Message(ShapeDim, dim => dim.Int64(DimSize, 1)));
                tensor.String(TensorStringVal, text);
            });
            v.Message(ValueMetadata, m => WritePluginData(m, "text", ReadOnlySpan<byte>.Empty));
        })).ToArray();

    /// <summary>A value with plugin metadata and no value (how the hparams plugin stores its three summaries).</summary>
    public static byte[] PluginEvent(double wallTime, long step, string tag, string pluginName, byte[] content) =>
        Event(wallTime, step).Message(EventSummary, summary => summary.Message(SummaryValue, v =>
        {
            v.String(ValueTag, tag);
            v.Message(ValueMetadata, m => WritePluginData(m, pluginName, content));
        })).ToArray();

    /// <summary>`Event{step, session_log{status=START}}`: on resume, tells the legacy loader to purge points with step ≥ this one.</summary>
    public static byte[] SessionStartEvent(double wallTime, long step) =>
        Event(wallTime, step).Message(EventSessionLog, log => log.Varint(SessionLogStatus, SessionLogStart)).ToArray();

    private static ProtoWriter Event(double wallTime, long step)
    {
        var writer = new ProtoWriter().Double(EventWallTime, wallTime);
        if (step != 0)
            writer.Int64(EventStep, step);
        return writer;
    }

    private static void WriteScalarValue(ProtoWriter v, string tag, float value, bool newStyle)
    {
        v.String(ValueTag, tag);
        if (!newStyle)
        {
            v.Float(ValueSimpleValue, value);
            return;
        }
        // No tensor_shape: rank 0. The plugin content (ScalarPluginData) is empty, so it is omitted.
        v.Message(ValueTensor, tensor =>
        {
            tensor.Varint(TensorDtype, DtFloat);
            tensor.PackedFloats(TensorFloatVal, [value]);
        });
        v.Message(ValueMetadata, m => WritePluginData(m, "scalars", ReadOnlySpan<byte>.Empty));
    }

    private static void WritePluginData(ProtoWriter metadata, string pluginName, ReadOnlySpan<byte> content)
    {
        byte[] contentCopy = content.ToArray();
        metadata.Message(MetadataPluginData, plugin =>
        {
            plugin.String(PluginName, pluginName);
            if (contentCopy.Length > 0)
                plugin.Bytes(PluginContent, contentCopy);
        });
    }
}
