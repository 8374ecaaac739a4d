using System.Text.Json;
using FineTune.Torch;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// What tests/reference/make_lora_fixtures.py computed for one adapter (Fixtures/lora/&lt;name&gt;/): the PEFT folder
/// it wrote, the base fixture it adapts, inputs, training-mode loss and gradients at step 0 (with the dropout masks
/// of that step), evaluation logits and loss, and the losses of five AdamW steps over the adapters only.
/// </summary>
internal sealed class LoraReferenceData
{
    public const string GqaTied = "lora_gqa_tied";
    public const string BiasAllLinear = "lora_bias_all_linear";

    private LoraReferenceData(string folder)
    {
        Folder = folder;
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected", "inputs.json")));
        JsonElement root = doc.RootElement;
        BaseFolder = ModelFixtures.Folder(root.GetProperty("base").GetString()!);
        InputIds = Matrix(root.GetProperty("input_ids"));
        Labels = Matrix(root.GetProperty("labels"));
        DropoutSeed = root.GetProperty("dropout_seed").GetInt64();
        Loss = root.GetProperty("loss").GetDouble();
        EvalLoss = root.GetProperty("eval_loss").GetDouble();
        AdamWLosses = root.GetProperty("adamw_losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }

    public string Folder { get; }

    /// <summary>The PEFT adapter folder (adapter_config.json + adapter_model.safetensors).</summary>
    public string AdapterFolder => Path.Combine(Folder, "adapter");

    /// <summary>The base model the adapter is for (a make_llama_fixtures.py model folder).</summary>
    public string BaseFolder { get; }

    public long[][] InputIds { get; }

    public long[][] Labels { get; }

    /// <summary>The training seed the reference's dropout masks derive from.</summary>
    public long DropoutSeed { get; }

    /// <summary>Training-mode loss at step 0 (dropout masks of position (0, 0)).</summary>
    public double Loss { get; }

    /// <summary>Loss without dropout.</summary>
    public double EvalLoss { get; }

    /// <summary>[k]: training loss before update k (masks of step k), k = 0..4; [5]: eval loss after the fifth update.</summary>
    public double[] AdamWLosses { get; }

    public static LoraReferenceData For(string name) =>
        new(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(ModelFixtures.Folder(ModelFixtures.GqaTied)))!, "lora", name));

    public Tensor IdsTensor() => ToTensor(InputIds);

    public Tensor LabelsTensor() => ToTensor(Labels);

    /// <summary>Evaluation logits (B, T, V), no dropout.</summary>
    public float[] Logits() => ReferenceData.ReadFloats(Path.Combine(Folder, "expected", "logits.safetensors"), "logits");

    /// <summary>d loss / d tensor at step 0 under FineTune's names (model.layers.0.self_attn.q_proj.lora_A.weight, HF names for extras).</summary>
    public float[] Grad(string name) => ReferenceData.ReadFloats(Path.Combine(Folder, "expected", "grads.safetensors"), name);

    private static long[][] Matrix(JsonElement element) =>
        element.EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();

    private static Tensor ToTensor(long[][] rows) =>
        FineTune.Torch.Torch.FromArray(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);
}
