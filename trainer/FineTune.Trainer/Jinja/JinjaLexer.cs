using System.Globalization;
using System.Text;

namespace FineTune.Trainer.Jinja;

/// <summary>
/// Splits a Jinja template into tokens the way Jinja2's lexer does under the settings transformers uses for chat
/// templates (trim_blocks, lstrip_blocks, keep_trailing_newline=False): newlines are normalized to "\n" and one
/// trailing newline is dropped; "{%-", "{{-", "{#-" strip all whitespace before the tag, "-%}", "-}}", "-#}" all
/// whitespace after it; trim_blocks drops the one newline right after "%}" or "#}" (not after "}}"), and
/// lstrip_blocks drops spaces and tabs between a line start and "{%" or "{#" ("{%+" keeps them, "+%}" keeps the
/// newline). Inside a tag, "}}" and "%}" only end it when brackets are balanced (a dict literal can hold "}}").
/// Comments produce no token. String literals are unescaped like Python's unicode-escape.
/// reference: jinja2/lexer.py (Lexer.__init__ rules, tokeniter, OptionalLStrip), Jinja 3.1.
/// </summary>
internal static class JinjaLexer
{
    // Longest first, so "//" wins over "/" and "**" over "*".
    private static readonly string[] s_operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    public static List<JinjaToken> Tokenize(string source)
    {
        source = NormalizeNewlines(source);
        var tokens = new List<JinjaToken>();
        int pos = 0;
        while (pos < source.Length)
        {
            int open = FindTagStart(source, pos);
            if (open < 0)
            {
                Add(tokens, JinjaTokenKind.Text, source[pos..], LineAt(source, pos));
                break;
            }
            char kind = source[open + 1]; // '{', '%' or '#'
            char sign = open + 2 < source.Length && source[open + 2] is '-' or '+' ? source[open + 2] : '\0';
            string text = source[pos..open];
            bool lineStarting = pos == 0 || source[pos - 1] == '\n';
            if (sign == '-')
            {
                text = PythonText.RStrip(text);
            }
            else if (sign != '+' && kind != '{')
            {
                // lstrip_blocks: only spaces/tabs between the last line start and the tag go
                int lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && text.AsSpan(lineStart).TrimStart(" \t").IsEmpty)
                    text = text[..lineStart];
            }
            Add(tokens, JinjaTokenKind.Text, text, LineAt(source, pos));
            int inner = open + 2 + (sign != '\0' ? 1 : 0);
            pos = kind switch
            {
                '#' => SkipComment(source, inner),
                '{' => LexTag(source, inner, tokens, isBlock: false),
                _ => LexTag(source, inner, tokens, isBlock: true),
            };
        }
        tokens.Add(new JinjaToken(JinjaTokenKind.End, "", LineAt(source, source.Length)));
        return tokens;
    }

    /// <summary>Jinja splits the source on \r\n, \r and \n, drops a final empty line, and joins with "\n".</summary>
    private static string NormalizeNewlines(string source)
    {
        string text = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    private static int FindTagStart(string source, int from)
    {
        for (int i = source.IndexOf('{', from); i >= 0 && i + 1 < source.Length; i = source.IndexOf('{', i + 1))
        {
            if (source[i + 1] is '{' or '%' or '#')
                return i;
        }
        return -1;
    }

    private static int SkipComment(string source, int pos)
    {
        int end = source.IndexOf("#}", pos, StringComparison.Ordinal);
        if (end < 0)
            throw JinjaException.Syntax("a comment '{#' is never closed with '#}'", LineAt(source, pos));
        char before = end > pos ? source[end - 1] : '\0';
        int after = end + 2;
        if (before == '-')
            return SkipWhitespace(source, after);
        if (before == '+')
            return after;
        return after < source.Length && source[after] == '\n' ? after + 1 : after; // trim_blocks
    }

    /// <summary>Tokens of one {{ ... }} or {% ... %} tag; returns the position after its end marker.</summary>
    private static int LexTag(string source, int pos, List<JinjaToken> tokens, bool isBlock)
    {
        int startLine = LineAt(source, pos);
        tokens.Add(new JinjaToken(isBlock ? JinjaTokenKind.BlockBegin : JinjaTokenKind.VariableBegin, "", startLine));
        int depth = 0; // open ( [ {: an end marker only counts at depth 0
        string end = isBlock ? "%}" : "}}";
        while (true)
        {
            pos = SkipWhitespace(source, pos);
            if (pos >= source.Length)
                throw JinjaException.Syntax($"a tag is never closed with '{end}'", startLine);
            int line = LineAt(source, pos);
            if (depth == 0)
            {
                if (source[pos] == '-' && At(source, pos + 1, end))
                {
                    tokens.Add(new JinjaToken(isBlock ? JinjaTokenKind.BlockEnd : JinjaTokenKind.VariableEnd, "", line));
                    return SkipWhitespace(source, pos + 3);
                }
                if (isBlock && source[pos] == '+' && At(source, pos + 1, end))
                {
                    tokens.Add(new JinjaToken(JinjaTokenKind.BlockEnd, "", line));
                    return pos + 3;
                }
                if (At(source, pos, end))
                {
                    tokens.Add(new JinjaToken(isBlock ? JinjaTokenKind.BlockEnd : JinjaTokenKind.VariableEnd, "", line));
                    pos += 2;
                    return isBlock && pos < source.Length && source[pos] == '\n' ? pos + 1 : pos; // trim_blocks
                }
            }
            char c = source[pos];
            if (char.IsAsciiDigit(c))
            {
                pos = LexNumber(source, pos, tokens, line);
            }
            else if (char.IsLetter(c) || c == '_')
            {
                int start = pos;
                while (pos < source.Length && (char.IsLetterOrDigit(source[pos]) || source[pos] == '_'))
                    pos++;
                tokens.Add(new JinjaToken(JinjaTokenKind.Name, source[start..pos], line));
            }
            else if (c is '\'' or '"')
            {
                pos = LexString(source, pos, tokens, line);
            }
            else
            {
                string? op = s_operators.FirstOrDefault(o => At(source, pos, o))
                    ?? throw JinjaException.Syntax($"unexpected character '{c}'", line);
                if (op is "(" or "[" or "{")
                    depth++;
                else if (op is ")" or "]" or "}")
                    depth = Math.Max(0, depth - 1);
                tokens.Add(new JinjaToken(JinjaTokenKind.Operator, op, line));
                pos += op.Length;
            }
        }
    }

    private static int LexNumber(string source, int pos, List<JinjaToken> tokens, int line)
    {
        int start = pos;
        while (pos < source.Length && (char.IsAsciiDigit(source[pos]) || source[pos] == '_'))
            pos++;
        bool isFloat = false;
        if (pos + 1 < source.Length && source[pos] == '.' && char.IsAsciiDigit(source[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < source.Length && (char.IsAsciiDigit(source[pos]) || source[pos] == '_'))
                pos++;
        }
        if (pos < source.Length && source[pos] is 'e' or 'E')
        {
            int exponent = pos + 1;
            if (exponent < source.Length && source[exponent] is '+' or '-')
                exponent++;
            if (exponent < source.Length && char.IsAsciiDigit(source[exponent]))
            {
                isFloat = true;
                pos = exponent;
                while (pos < source.Length && char.IsAsciiDigit(source[pos]))
                    pos++;
            }
        }
        tokens.Add(new JinjaToken(isFloat ? JinjaTokenKind.Float : JinjaTokenKind.Integer, source[start..pos].Replace("_", ""), line));
        return pos;
    }

    private static int LexString(string source, int pos, List<JinjaToken> tokens, int line)
    {
        char quote = source[pos];
        var value = new StringBuilder();
        int i = pos + 1;
        while (true)
        {
            if (i >= source.Length)
                throw JinjaException.Syntax("a string literal is never closed", line);
            char c = source[i];
            if (c == quote)
                break;
            if (c != '\\' || i + 1 >= source.Length)
            {
                value.Append(c);
                i++;
                continue;
            }
            i = Unescape(source, i, value, line);
        }
        tokens.Add(new JinjaToken(JinjaTokenKind.String, value.ToString(), line));
        return i + 1;
    }

    /// <summary>One backslash escape at <paramref name="i"/>, as Python's unicode-escape codec reads it; returns the next position.</summary>
    private static int Unescape(string source, int i, StringBuilder value, int line)
    {
        char e = source[i + 1];
        switch (e)
        {
            case '\n': return i + 2; // line continuation
            case '\\': value.Append('\\'); return i + 2;
            case '\'': value.Append('\''); return i + 2;
            case '"': value.Append('"'); return i + 2;
            case 'a': value.Append('\a'); return i + 2;
            case 'b': value.Append('\b'); return i + 2;
            case 'f': value.Append('\f'); return i + 2;
            case 'n': value.Append('\n'); return i + 2;
            case 'r': value.Append('\r'); return i + 2;
            case 't': value.Append('\t'); return i + 2;
            case 'v': value.Append('\v'); return i + 2;
            case 'x': return Hex(source, i, 2, value, line);
            case 'u': return Hex(source, i, 4, value, line);
            case 'U': return Hex(source, i, 8, value, line);
            case 'N': throw JinjaException.Unsupported("the \\N{...} escape in a string literal", line);
        }
        if (e is >= '0' and <= '7')
        {
            int end = i + 1, code = 0;
            while (end < source.Length && end < i + 4 && source[end] is >= '0' and <= '7')
                code = code * 8 + (source[end++] - '0');
            value.Append((char)code);
            return end;
        }
        value.Append('\\').Append(e); // Python keeps unknown escapes as written
        return i + 2;
    }

    private static int Hex(string source, int i, int digits, StringBuilder value, int line)
    {
        int start = i + 2;
        if (start + digits > source.Length || !int.TryParse(source.AsSpan(start, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code))
            throw JinjaException.Syntax($"a '\\{source[i + 1]}' escape needs {digits} hex digits", line);
        value.Append(char.ConvertFromUtf32(code));
        return start + digits;
    }

    private static void Add(List<JinjaToken> tokens, JinjaTokenKind kind, string text, int line)
    {
        if (text.Length > 0)
            tokens.Add(new JinjaToken(kind, text, line));
    }

    private static bool At(string source, int pos, string text) => string.CompareOrdinal(source, pos, text, 0, text.Length) == 0;

    private static int SkipWhitespace(string source, int pos)
    {
        while (pos < source.Length && PythonText.IsSpace(source[pos]))
            pos++;
        return pos;
    }

    private static int LineAt(string source, int pos) => 1 + source.AsSpan(0, Math.Min(pos, source.Length)).Count('\n');
}
