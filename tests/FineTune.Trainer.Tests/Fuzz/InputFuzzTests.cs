using System.Buffers.Binary;
using System.Text;
using FineTune.IO.Safetensors;
using FineTune.Trainer.Models;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace FineTune.Trainer.Tests.Fuzz;

/// <summary>
/// Issue 21's property fuzz (FsCheck): generated config.json files (read by the config reader, then validated and
/// planned as a recipe's model), safetensors headers (opened), and recipes (bound, validated and planned) must each
/// end in success or one sentence (a <see cref="UserErrorException"/>), never another exception, never a hang past
/// <see cref="FuzzOutcome.TimeLimit"/>, and the test process's peak RSS stays under 2 GiB. About 4,800 cases in CI
/// (well under a minute); FINETUNE_FUZZ_CASES=N runs N per property (tools/fuzz-inputs.sh).
/// </summary>
public sealed class InputFuzzTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ft-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static Config Configured(int ciDefault) => Config.QuickThrowOnFailure.WithMaxTest(FuzzOutcome.Cases(ciDefault)).WithQuietOnSuccess(true);

    [Fact]
    public void ConfigJsonEndsInSuccessOrOneSentenceWithin2GiB()
    {
        string folder = Directory.CreateDirectory(Path.Combine(_root, "model")).FullName;
        Prop.ForAll(HostileGenerators.ConfigJson().ToArbitrary(), json => FuzzOutcome.Holds(json, () =>
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), json);
            try
            {
                LlamaConfigReader.ReadFolder(folder);
            }
            finally
            {
                Recipe recipe = Recipe.Parse($"model: {{path: {folder}}}\ntokenizer: {{kind: byte}}\ndataset: {{format: synthetic, seq_len: 16}}\ntraining: {{device: cpu}}\noffload: {{host_gb: 4}}\noutput_dir: {_root}/out\n", "fuzz.yaml");
                RunPlan.Create(recipe, baselineByteCount: 0);
            }
        })).Check(Configured(1200));
        FuzzOutcome.CheckPeakResident();
    }

    [Fact]
    public void SafetensorsHeaderEndsInSuccessOrOneSentenceWithin2GiB()
    {
        string path = Path.Combine(_root, "model.safetensors");
        var data = Gen.Choose(0, 64);
        Prop.ForAll(Gen.Zip(HostileGenerators.SafetensorsHeader(), data).ToArbitrary(), c => FuzzOutcome.Holds(c.Item1, () =>
        {
            byte[] header = Encoding.UTF8.GetBytes(c.Item1);
            byte[] file = new byte[8 + header.Length + c.Item2];
            BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
            header.CopyTo(file, 8);
            File.WriteAllBytes(path, file);
            using SafetensorsFile opened = SafetensorsFile.Open(path);
        })).Check(Configured(1200));
        FuzzOutcome.CheckPeakResident();
    }

    [Fact]
    public void RecipeOverridesOfAValidRecipeEndInSuccessOrOneSentenceWithin2GiB()
    {
        File.WriteAllText(Path.Combine(_root, "data.jsonl"), "{\"text\": \"hello\"}\n");
        string[] files = [Path.Combine(_root, "data.jsonl"), Path.Combine(_root, "missing"), _root, "/dev/null", $"{_root}/out/swap"];
        string[] paths = RecipeSchema.Fields.Select(f => f.Path).Where(p => p is not ("output_dir" or "checkpoint.dir")).ToArray();
        const string valid = "model:\n  config: {vocab_size: 300, hidden_size: 64, intermediate_size: 176, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 128}\n"
            + "tokenizer: {kind: byte}\ndataset: {format: synthetic, seq_len: 64}\ntraining: {device: cpu}\n";
        int planned = 0;
        Prop.ForAll(HostileGenerators.RecipeOverrides(paths, files).ToArbitrary(), overrides => FuzzOutcome.Holds(string.Join(' ', overrides), () =>
        {
            Recipe recipe = Recipe.Parse(valid, "fuzz.yaml", [.. overrides, $"output_dir={_root}/out"]);
            RunPlan.Create(recipe, baselineByteCount: 0);
            planned++;
        })).Check(Configured(1200));
        Assert.True(planned > 0, "no generated recipe passed validation and planning; the generator only tests refusals");
        FuzzOutcome.CheckPeakResident();
    }

    [Fact]
    public void RecipesEndInSuccessOrOneSentenceWithin2GiB()
    {
        string fifo = Path.Combine(_root, "fifo");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo]))
            mkfifo.WaitForExit();
        File.WriteAllText(Path.Combine(_root, "data.jsonl"), "{\"text\": \"hello\"}\n");
        string[] files = [fifo, Path.Combine(_root, "data.jsonl"), Path.Combine(_root, "missing"), _root, "/dev/null", "/dev/zero", "~/x"];
        string[] paths = RecipeSchema.Fields.Select(f => f.Path).Where(p => p != "output_dir").ToArray();
        Prop.ForAll(HostileGenerators.RecipeYaml(paths, files).ToArbitrary(), yaml => FuzzOutcome.Holds(yaml, () =>
        {
            // output_dir stays in the scratch folder: validate probes that it can write there
            Recipe recipe = Recipe.Parse(yaml, "fuzz.yaml", [$"output_dir={_root}/out"]);
            RunPlan.Create(recipe, baselineByteCount: 0);
        })).Check(Configured(1200));
        FuzzOutcome.CheckPeakResident();
    }
}
