using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FineTune.Trainer.Jinja;
using FineTune.Trainer.Tests.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Jinja;

/// <summary>
/// Every case of Fixtures/chat_templates/cases.json: 11 real Hugging Face chat templates (ChatML, Llama 3.1, Mistral
/// v0.1/v0.3/legacy, Gemma 2, Phi-3, Qwen1.5, Qwen2.5 with tools, SmolLM2, Zephyr) over 64 conversations, rendered
/// by Python's Jinja2 set up as transformers sets it up (make_cases.py). Ours must give the same text byte for byte,
/// or raise the same raise_exception message.
/// </summary>
public sealed class ChatTemplateCasesTests
{
    private static readonly Lazy<Dictionary<string, JsonElement>> s_cases = new(() =>
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(FixturePaths.ChatTemplates("cases.json")));
        return document.RootElement.EnumerateArray().ToDictionary(c => c.GetProperty("id").GetString()!, c => c.Clone());
    });

    public static TheoryData<string> CaseIds()
    {
        var data = new TheoryData<string>();
        foreach (string id in s_cases.Value.Keys)
            data.Add(id);
        return data;
    }

    [Fact]
    public void FixtureHoldsTheCasesTheIssueAsksFor()
    {
        Assert.Equal(64, s_cases.Value.Count);
        string[] templates = s_cases.Value.Values.Select(c => c.GetProperty("template").GetString()!).Distinct().ToArray();
        Assert.Equal(11, templates.Length);
        foreach (string family in new[] { "nous-hermes-2", "llama-3.1", "mistral-7b-instruct-v0.3", "gemma-2", "phi-3", "qwen2.5" })
            Assert.Contains(templates, t => t.StartsWith(family, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void RendersLikeJinja2(string id)
    {
        JsonElement c = s_cases.Value[id];
        byte[] raw = File.ReadAllBytes(FixturePaths.ChatTemplates(c.GetProperty("template_file").GetString()!));
        Assert.Equal(c.GetProperty("template_sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(raw)));
        JinjaTemplate template = JinjaTemplate.Parse(new UTF8Encoding(false, true).GetString(raw));

        var variables = new Dictionary<string, object?>
        {
            ["messages"] = c.GetProperty("messages"),
            ["tools"] = c.GetProperty("tools"),
            ["documents"] = null,
            ["add_generation_prompt"] = c.GetProperty("add_generation_prompt").GetBoolean(),
        };
        foreach (string token in new[] { "bos_token", "eos_token" })
        {
            if (c.GetProperty(token).ValueKind == JsonValueKind.String)
                variables[token] = c.GetProperty(token).GetString();
        }
        foreach (JsonProperty extra in c.GetProperty("extra_context").EnumerateObject())
            variables[extra.Name] = extra.Value;

        if (c.GetProperty("expected_error").ValueKind == JsonValueKind.String)
        {
            JinjaException e = Assert.Throws<JinjaException>(() => template.Render(variables));
            Assert.Equal(JinjaErrorKind.Raised, e.Kind);
            Assert.Equal(c.GetProperty("expected_error").GetString(), e.Message);
        }
        else
        {
            Assert.Equal(c.GetProperty("expected_output").GetString(), template.Render(variables));
        }
    }
}
