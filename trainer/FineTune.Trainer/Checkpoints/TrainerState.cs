using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// trainer_state.json: everything besides weights and optimizer tensors that a resumed run needs to continue
/// bit-exactly: step, epoch, the data loader's position (opaque JSON owned by the dataset code), every RNG state
/// (opaque bytes, base64 in JSON, keyed by generator name such as "cpu", "cuda:0", "shuffle"), the scheduler's
/// state (opaque JSON), the loss scale, skipped steps and tokens seen. Modeled on HF Trainer's trainer_state.json
/// and torchtune's recipe_state (FORMATS.md §4.4, §4.5), in one versioned JSON file.
/// </summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";
    public const string ExpectedMagic = "finetune-trainer-state";
    public const int CurrentVersion = 1;

    [JsonPropertyName("magic")] public string Magic { get; init; } = ExpectedMagic;
    [JsonPropertyName("version")] public int Version { get; init; } = CurrentVersion;
    /// <summary>Optimizer steps completed.</summary>
    [JsonPropertyName("step")] public long Step { get; init; }
    /// <summary>Epochs completed (0 while in the first).</summary>
    [JsonPropertyName("epoch")] public int Epoch { get; init; }
    [JsonPropertyName("data_position")] public JsonObject DataPosition { get; init; } = [];
    [JsonPropertyName("rng_states")] public IReadOnlyDictionary<string, byte[]> RngStates { get; init; } = new Dictionary<string, byte[]>();
    [JsonPropertyName("scheduler_state")] public JsonObject SchedulerState { get; init; } = [];
    /// <summary>Dynamic loss scale of fp16 training; 1 otherwise.</summary>
    [JsonPropertyName("loss_scale")] public double LossScale { get; init; } = 1.0;
    /// <summary>Steps skipped because of non-finite gradients.</summary>
    [JsonPropertyName("skipped_steps")] public long SkippedSteps { get; init; }
    [JsonPropertyName("tokens_seen")] public long TokensSeen { get; init; }

    private static readonly JsonSerializerOptions s_options = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, s_options) + "\n";

    /// <summary>Parses trainer_state.json text; <paramref name="sourcePath"/> names it in errors.</summary>
    public static TrainerState FromJson(string json, string sourcePath)
    {
        TrainerState? state;
        try
        {
            state = JsonSerializer.Deserialize<TrainerState>(json, s_options);
        }
        catch (JsonException e)
        {
            throw new UserErrorException($"{sourcePath} is not a valid trainer state ({e.Message.TrimEnd('.')}); resume from another checkpoint.", e);
        }
        if (state is null || state.Magic != ExpectedMagic)
            throw new UserErrorException($"{sourcePath} is not a FineTune trainer state (magic '{state?.Magic}'); resume from a checkpoint FineTune wrote.");
        if (state.Version != CurrentVersion)
            throw new UserErrorException($"{sourcePath} is trainer-state version {state.Version}, and this FineTune reads version {CurrentVersion}; use the release that wrote it.");
        return state;
    }

    public static TrainerState Read(string path)
    {
        try
        {
            byte[] bytes = IO.InputFile.ReadAllBytes(path, IO.InputFile.ConfigLimitByteCount, TrainerState.FileName);
            using (IO.StrictJson.Parse(bytes, path, "resume from another checkpoint"))
            {
            }
            return FromJson(System.Text.Encoding.UTF8.GetString(bytes), path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot read {path} ({e.Message.TrimEnd('.')}); resume from another checkpoint.", e);
        }
    }
}
