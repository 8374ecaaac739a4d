using System.Text;

namespace FineTune;

/// <summary>
/// A mistake the user can fix (bad recipe, missing file, no disk space, corrupt checkpoint).
/// The `finetune` command prints only <see cref="Exception.Message"/> (one sentence naming what to change)
/// and exits with code 2; every other exception is a bug and shows its stack trace with exit code 1.
/// The message is kept to one line: text quoted from a hostile input (a JSON token, a file name) can hold line
/// breaks and control characters, which are written as escapes, and a very long quote is cut.
/// Lives in the lowest layer (io) so every layer above can throw it.
/// </summary>
public class UserErrorException : Exception
{
    public const int MaxMessageLength = 2000;

    public UserErrorException(string message) : base(OneLine(message)) { }

    public UserErrorException(string message, Exception inner) : base(OneLine(message), inner) { }

    /// <summary><paramref name="text"/> with control characters escaped (\n, \u0000) and at most <see cref="MaxMessageLength"/> characters.</summary>
    public static string OneLine(string text)
    {
        if (text.Length <= MaxMessageLength && !text.Any(char.IsControl))
            return text;
        var line = new StringBuilder(Math.Min(text.Length, MaxMessageLength + 16));
        foreach (char c in text)
        {
            if (line.Length >= MaxMessageLength)
            {
                line.Append("...");
                break;
            }
            line.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return line.ToString();
    }
}
