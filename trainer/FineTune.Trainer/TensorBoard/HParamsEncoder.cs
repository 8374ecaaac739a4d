namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// The plugin content of the hparams plugin's three summaries (`_hparams_/experiment`,
/// `_hparams_/session_start_info`, `_hparams_/session_end_info`), i.e. serialized `HParamsPluginData`.
/// reference: FORMATS.md §1.6 (tensorboard/plugins/hparams/plugin_data.proto, api.proto, metadata.py); the
/// tensorboardX bytes for {lr: 0.1, bsize: 4} with metrics accuracy, loss are reproduced by the tests.
/// Hyperparameter values may be double (any .NET number), string or bool, as google.protobuf.Value allows.
/// </summary>
internal static class HParamsEncoder
{
    public const string PluginName = "hparams";
    public const string ExperimentTag = "_hparams_/experiment";
    public const string SessionStartTag = "_hparams_/session_start_info";
    public const string SessionEndTag = "_hparams_/session_end_info";

    /// <summary>api.proto DataType of an HParamInfo; Unset omits the field (older writers such as tensorboardX).</summary>
    public enum ValueType { Unset = 0, String = 1, Bool = 2, Float64 = 3 }

    /// <summary>SessionEndInfo.status (api.proto Status).</summary>
    public enum SessionStatus { Unknown = 0, Success = 1, Failure = 2, Running = 3 }

    // HParamsPluginData
    private const int DataExperiment = 2, DataSessionStart = 3, DataSessionEnd = 4;
    // Experiment, HParamInfo, MetricInfo, MetricName
    private const int ExperimentTimeCreated = 3, ExperimentHParamInfos = 4, ExperimentMetricInfos = 5;
    private const int HParamInfoName = 1, HParamInfoType = 4;
    private const int MetricInfoName = 1, MetricNameTag = 2;
    // SessionStartInfo, SessionEndInfo, map entry, google.protobuf.Value
    private const int StartHParams = 1, StartTimeSecs = 5;
    private const int EndStatus = 1, EndTimeSecs = 2;
    private const int EntryKey = 1, EntryValue = 2;
    private const int ValueNumber = 2, ValueString = 3, ValueBool = 4;

    public static byte[] Experiment(IEnumerable<(string Name, ValueType Type)> hparams, IEnumerable<string> metricTags, double timeCreatedSecs = 0) =>
        new ProtoWriter().Message(DataExperiment, experiment =>
        {
            if (timeCreatedSecs != 0)
                experiment.Double(ExperimentTimeCreated, timeCreatedSecs);
            foreach (var (name, type) in hparams)
                experiment.Message(ExperimentHParamInfos, info =>
                {
                    info.String(HParamInfoName, name);
                    if (type != ValueType.Unset)
                        info.Varint(HParamInfoType, (ulong)type);
                });
            foreach (string tag in metricTags)
                experiment.Message(ExperimentMetricInfos, info => info.Message(MetricInfoName, name => name.String(MetricNameTag, tag)));
        }).ToArray();

    public static byte[] SessionStart(IEnumerable<KeyValuePair<string, object>> hparams, double startTimeSecs = 0) =>
        new ProtoWriter().Message(DataSessionStart, start =>
        {
            foreach (var (name, value) in hparams)
                start.Message(StartHParams, entry =>
                {
                    entry.String(EntryKey, name);
                    entry.Message(EntryValue, v => WriteValue(v, name, value));
                });
            if (startTimeSecs != 0)
                start.Double(StartTimeSecs, startTimeSecs);
        }).ToArray();

    public static byte[] SessionEnd(SessionStatus status, double endTimeSecs = 0) =>
        new ProtoWriter().Message(DataSessionEnd, end =>
        {
            if (status != SessionStatus.Unknown)
                end.Varint(EndStatus, (ulong)status);
            if (endTimeSecs != 0)
                end.Double(EndTimeSecs, endTimeSecs);
        }).ToArray();

    /// <summary>The HParamInfo type that matches a value accepted by <see cref="SessionStart"/>.</summary>
    public static ValueType TypeOf(object value) => value switch
    {
        string => ValueType.String,
        bool => ValueType.Bool,
        double or float or int or long => ValueType.Float64,
        _ => throw new ArgumentException($"hyperparameter values must be double, string or bool, not {value.GetType().Name}."),
    };

    private static void WriteValue(ProtoWriter v, string name, object value)
    {
        switch (value)
        {
            case string s: v.String(ValueString, s); break;
            case bool b: v.Varint(ValueBool, b ? 1UL : 0UL); break;
            case double d: v.Double(ValueNumber, d); break;
            case float f: v.Double(ValueNumber, f); break;
            case int i: v.Double(ValueNumber, i); break;
            case long l: v.Double(ValueNumber, l); break;
            default: throw new ArgumentException($"hyperparameter {name} has a {value.GetType().Name}; use double, string or bool.");
        }
    }
}
