using System.Text.Json;
using FineTune.Trainer.Jinja;
using FineTune.Trainer.Tests.Tokenizers;
using Xunit;

namespace FineTune.Trainer.Tests.Jinja;

/// <summary>
/// Jinja semantics the real chat templates do not all reach (whitespace control corners, scoping, loop variables,
/// Python arithmetic and repr, each filter and test, macros, tuples), each rendered by Python's Jinja2 3.1.2 in the
/// chat-template environment: Fixtures/jinja/semantics.json, written by Fixtures/jinja/make_semantics.py. The
/// template errors must match in kind: raise_exception's message exactly, Python's UndefinedError/TypeError/
/// SecurityError as a runtime error.
/// </summary>
public sealed class JinjaSemanticsTests
{
    private static readonly Lazy<Dictionary<string, JsonElement>> s_cases = new(() =>
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(FixturePaths.Jinja("semantics.json")));
        return document.RootElement.EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.Clone());
    });

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (string name in s_cases.Value.Keys)
            data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void RendersLikeJinja2(string name)
    {
        JsonElement c = s_cases.Value[name];
        JinjaTemplate template = JinjaTemplate.Parse(c.GetProperty("template").GetString()!);
        var variables = c.GetProperty("context").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value);
        string? errorType = c.GetProperty("expected_error_type").GetString();
        if (errorType is null)
        {
            Assert.Equal(c.GetProperty("expected_output").GetString(), template.Render(variables));
        }
        else
        {
            JinjaException e = Assert.Throws<JinjaException>(() => template.Render(variables));
            Assert.Equal(errorType == "TemplateError" ? JinjaErrorKind.Raised : JinjaErrorKind.Runtime, e.Kind);
            if (errorType == "TemplateError")
                Assert.Equal(c.GetProperty("expected_error").GetString(), e.Message);
        }
    }

    [Theory]
    [InlineData("{% include 'x.jinja' %}", "the '{% include %}' statement (template line 1)")]
    [InlineData("a\n{{ x | wordwrap(3) }}", "the filter 'wordwrap' (template line 2)")]
    [InlineData("{% if x is sameasnot 1 %}{% endif %}", "the test 'sameasnot' (template line 1)")]
    [InlineData("{% for m in messages recursive %}{% endfor %}", "a recursive for loop (template line 1)")]
    [InlineData("{{ f(*args) }}", "a call with *args or **kwargs (template line 1)")]
    public void UnsupportedConstructsAreRefusedWhenParsedNamingThem(string source, string construct)
    {
        JinjaException e = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(source));
        Assert.Equal(JinjaErrorKind.Unsupported, e.Kind);
        Assert.Equal($"{construct} is not supported by FineTune's Jinja interpreter", e.Message);
    }

    [Theory]
    [InlineData("{{ 'a'.format(1) }}", "the str method 'format'")]
    [InlineData("{{ '%s' % 'x' }}", "string formatting with '%'")]
    public void UnsupportedMethodsAreRefusedWhenCalled(string source, string construct)
    {
        JinjaException e = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(source).Render(new Dictionary<string, object?>()));
        Assert.Equal(JinjaErrorKind.Unsupported, e.Kind);
        Assert.StartsWith(construct, e.Message);
    }

    [Theory]
    [InlineData("{% if x %}", JinjaErrorKind.Syntax)]
    [InlineData("{{ 'unclosed }}", JinjaErrorKind.Syntax)]
    [InlineData("{% endfor %}", JinjaErrorKind.Syntax)]
    [InlineData("{{ a b }}", JinjaErrorKind.Syntax)]
    public void MalformedTemplatesAreSyntaxErrors(string source, JinjaErrorKind kind) =>
        Assert.Equal(kind, Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(source)).Kind);

    [Fact]
    public void StrftimeNowFormatsTheRenderClock()
    {
        string text = JinjaTemplate.Parse("{{ strftime_now('%d %b %Y, %A %H:%M') }}").Render(new Dictionary<string, object?>(), new DateTime(2024, 7, 26, 9, 5, 0));
        Assert.Equal("26 Jul 2024, Friday 09:05", text);
    }
}
