using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Generation;

/// <summary>
/// Turns generated ids into text as they arrive: each call decodes the whole answer so far (special tokens
/// skipped) and returns what is new since the last call, holding back a trailing U+FFFD while a multi-byte
/// character is still incomplete (a byte-level token can end mid-character). Decoding the whole answer, not each
/// token alone, keeps what tokenizers do across tokens (SentencePiece's leading-space rule, byte fallback).
/// </summary>
public sealed class StreamingDecoder(ITokenizer tokenizer)
{
    private readonly List<int> _ids = [];
    private string _emitted = "";

    /// <summary>The text all ids so far decode to.</summary>
    public string Text => tokenizer.Decode(_ids.ToArray(), skipSpecialTokens: true);

    /// <summary>Adds one id; returns the text it completes (often "", when a character is not finished yet).</summary>
    public string Add(int id)
    {
        _ids.Add(id);
        string text = Text;
        int ready = text.Length;
        while (ready > 0 && text[ready - 1] == '\uFFFD')
            ready--;
        return Emit(text[..ready]);
    }

    /// <summary>What is left when generation ends (a held-back incomplete character prints as U+FFFD).</summary>
    public string Flush() => Emit(Text);

    private string Emit(string upTo)
    {
        if (!upTo.StartsWith(_emitted, StringComparison.Ordinal))
            return ""; // an earlier piece decoded differently once more followed: what was printed stays
        string added = upTo[_emitted.Length..];
        _emitted = upTo;
        return added;
    }
}
