using System.Runtime.InteropServices;
using System.Text.Json;
using FineTune.IO.Safetensors;
using FineTune.Torch;

namespace FineTune.Trainer.Tests.Models;

/// <summary>
/// What tests/reference/make_llama_fixtures.py computed for one fixture model (expected/ folder): inputs, loss,
/// AdamW losses, logits, per-stage hidden states and every gradient (float64 math, stored as float32).
/// </summary>
internal sealed class ReferenceData
{
    private ReferenceData(string folder)
    {
        Folder = folder;
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected", "inputs.json")));
        JsonElement root = doc.RootElement;
        InputIds = Matrix(root.GetProperty("input_ids"));
        Labels = Matrix(root.GetProperty("labels"));
        Loss = root.GetProperty("loss").GetDouble();
        AdamWLosses = root.GetProperty("adamw_losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        JsonElement eval = root.GetProperty("eval");
        EvalRow = eval.GetProperty("row").GetInt32();
        EvalSequenceLength = eval.GetProperty("seq").GetInt32();
        EvalPredictionCount = eval.GetProperty("predictions").GetInt32();
        EvalMeanCrossEntropy = eval.GetProperty("mean_cross_entropy").GetDouble();
    }

    public string Folder { get; }

    public long[][] InputIds { get; }

    public long[][] Labels { get; }

    public double Loss { get; }

    /// <summary>adamw_losses[k]: loss before update k (k = 0..4); [5]: after the fifth update.</summary>
    public double[] AdamWLosses { get; }

    /// <summary>`finetune eval` reference: row of <see cref="InputIds"/>, window length, predictions, mean CE.</summary>
    public int EvalRow { get; }

    public int EvalSequenceLength { get; }

    public int EvalPredictionCount { get; }

    public double EvalMeanCrossEntropy { get; }

    public static ReferenceData For(string fixtureName) => new(ModelFixtures.Folder(fixtureName));

    /// <summary>(B, T) int64 tensor of the input ids (caller or current scope owns it).</summary>
    public Tensor IdsTensor() => ToTensor(InputIds);

    public Tensor LabelsTensor() => ToTensor(Labels);

    public float[] Logits() => ReadExpected("logits.safetensors", "logits");

    public float[] Hidden(string stage) => ReadExpected("hidden.safetensors", stage);

    public float[] Grad(string parameterName) => ReadExpected("grads.safetensors", parameterName);

    public IReadOnlyList<string> GradNames()
    {
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(Folder, "expected", "grads.safetensors"));
        return file.Tensors.Select(t => t.Name).ToArray();
    }

    /// <summary>max |actual - expected| / max |expected|: the error relative to the tensor's scale.</summary>
    public static double MaxRelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length)
            throw new ArgumentException($"{actual.Length} values compared with {expected.Length}");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)actual[i] - expected[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)expected[i]));
            if (double.IsNaN(actual[i]))
                return double.PositiveInfinity;
        }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
    }

    public static float[] ReadFloats(string path, string name)
    {
        using SafetensorsFile file = SafetensorsFile.Open(path);
        SafetensorsTensorInfo info = file.GetTensor(name);
        var values = new float[info.ElementCount];
        file.ReadTensorBytes(name, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    private float[] ReadExpected(string file, string name) => ReadFloats(Path.Combine(Folder, "expected", file), name);

    private static long[][] Matrix(JsonElement element) =>
        element.EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();

    private static Tensor ToTensor(long[][] rows) =>
        FineTune.Torch.Torch.FromArray(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);
}
