using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// `finetune export --merge`'s core, <see cref="LlamaExporter.Export"/> with adapters to merge, on the reference
/// adapters: every adapted weight of the written folder equals W + (alpha / r) B A computed here in float64 from the
/// base and adapter files (read by the tests' own safetensors reader) to float32 rounding, every other weight is
/// the base's bit for bit, and the merged model computes the reference's logits of base + adapter.
/// The merge bound per element: |got - exact| &lt;= 4 eps32 (|W| + s sum_k |B_ik A_kj|), two roundings of the
/// rank-r product, one of the sum, and one of the final cast, each at most eps32 = 2^-24 relative.
/// </summary>
public sealed class LoraMergeTests
{
    private readonly ITestOutputHelper _output;

    public LoraMergeTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(LoraReferenceData.GqaTied, 4, 8.0)]
    [InlineData(LoraReferenceData.BiasAllLinear, 2, 3.0)]
    public void MergedExportIsBasePlusScaledBTimesAToFloat32Rounding(string fixture, int rank, double alpha)
    {
        var reference = LoraReferenceData.For(fixture);
        using var scratch = new ScratchFolder();
        using (TensorScope.Enter())
        {
            using var opened = LlamaModel.Open(reference.BaseFolder, DType.Float32, Device.Cpu);
            using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, opened);
            LlamaExporter.Export(opened, scratch.Path, DType.Float32, merge: adapters);
        }

        var merged = IndependentSafetensors.Read(Path.Combine(scratch.Path, "model.safetensors"));
        var baseFile = IndependentSafetensors.Read(Path.Combine(reference.BaseFolder, "model.safetensors"));
        var adapterFile = IndependentSafetensors.Read(Path.Combine(reference.AdapterFolder, "adapter_model.safetensors"));
        Assert.Equal(baseFile.Tensors.Keys.Order(StringComparer.Ordinal), merged.Tensors.Keys.Order(StringComparer.Ordinal));
        double scale = alpha / rank, worstRatio = 0;
        int adapted = 0;
        foreach (string name in baseFile.Tensors.Keys)
        {
            float[] w = baseFile.Floats(name), got = merged.Floats(name);
            string module = name[..^".weight".Length];
            string aName = "base_model.model." + module + ".lora_A.weight";
            if (adapterFile.Tensors.ContainsKey("base_model.model." + name))
            {
                Assert.Equal(adapterFile.Floats("base_model.model." + name), got); // modules_to_save: the trained weights
                continue;
            }
            if (!adapterFile.Tensors.ContainsKey(aName))
            {
                Assert.Equal(w, got);
                continue;
            }
            adapted++;
            float[] a = adapterFile.Floats(aName), b = adapterFile.Floats("base_model.model." + module + ".lora_B.weight");
            long[] shape = baseFile.Tensors[name].Shape;
            int outFeatures = (int)shape[0], inFeatures = (int)shape[1];
            for (int i = 0; i < outFeatures; i++)
            {
                for (int j = 0; j < inFeatures; j++)
                {
                    double delta = 0, magnitude = 0;
                    for (int k = 0; k < rank; k++)
                    {
                        delta += (double)b[i * rank + k] * a[k * inFeatures + j];
                        magnitude += Math.Abs((double)b[i * rank + k] * a[k * inFeatures + j]);
                    }
                    double exact = w[i * inFeatures + j] + scale * delta;
                    double bound = 4 * Math.Pow(2, -24) * (Math.Abs(w[i * inFeatures + j]) + scale * magnitude);
                    double error = Math.Abs(got[i * inFeatures + j] - exact);
                    worstRatio = Math.Max(worstRatio, error / bound);
                    Assert.True(error <= bound, $"{name}[{i}, {j}]: {got[i * inFeatures + j]} vs {exact} (bound {bound:E2})");
                }
            }
        }
        _output.WriteLine($"{fixture}: {adapted} merged weights, worst error {worstRatio:0.00} of the float32 bound");
        Assert.Equal(fixture == LoraReferenceData.GqaTied ? 2 * 4 : 2 * 7, adapted);
    }

    [Theory]
    [InlineData(LoraReferenceData.GqaTied)]
    [InlineData(LoraReferenceData.BiasAllLinear)]
    public void MergedModelComputesTheReferenceLogitsOfBasePlusAdapter(string fixture)
    {
        var reference = LoraReferenceData.For(fixture);
        using var scratch = new ScratchFolder();
        using var scope = TensorScope.Enter();
        using (var opened = LlamaModel.Open(reference.BaseFolder, DType.Float32, Device.Cpu))
        using (LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, opened))
            LlamaExporter.Export(opened, scratch.Path, DType.Float32, merge: adapters);

        using var merged = LlamaModel.Load(scratch.Path, DType.Float32, Device.Cpu);
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        double error = ReferenceData.MaxRelativeError(merged.Forward(reference.IdsTensor()).ToArray<float>(), reference.Logits());
        _output.WriteLine($"{fixture}: merged logits max rel error {error:E2}");
        Assert.True(error < 1e-5, $"merged logits: {error:E2}");
    }
}
