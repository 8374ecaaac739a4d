namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// Text to token ids and back. Implemented by <see cref="HfTokenizer"/> (a Hugging Face tokenizer.json: byte-level
/// BPE or SentencePiece-style BPE) and <see cref="ByteTokenizer"/> (256 byte ids plus BOS/EOS/PAD, for from-scratch
/// runs). Instances are immutable after loading; <see cref="Encode"/> and <see cref="Decode"/> are thread-safe.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids the model's embedding must hold (largest id + 1, added tokens included).</summary>
    int VocabularyCount { get; }

    /// <summary>Begin-of-sequence id, or null when the tokenizer declares none.</summary>
    int? BosId { get; }

    /// <summary>End-of-sequence id (separates packed documents, ends instruction answers), or null when none.</summary>
    int? EosId { get; }

    /// <summary>Padding id for input positions that carry no data (their labels are always -100), or null.</summary>
    int? PadId { get; }

    /// <summary>Ids that encoding with addSpecialTokens puts before the text (BOS for Llama; none for Qwen2).</summary>
    IReadOnlyList<int> PrefixIds { get; }

    /// <summary>Where the tokenizer came from (a path, or "byte"), for messages.</summary>
    string Source { get; }

    /// <summary>
    /// Encodes text. Added/special tokens written in the text (e.g. "&lt;|im_start|&gt;") become their ids.
    /// With <paramref name="addSpecialTokens"/> the post-processor's template (e.g. BOS first) is applied.
    /// </summary>
    int[] Encode(string text, bool addSpecialTokens = false);

    /// <summary>Decodes ids back to text; <paramref name="skipSpecialTokens"/> drops special tokens such as BOS/EOS.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false);

    /// <summary>The id of a token written exactly as in the vocabulary or added tokens, or null.</summary>
    int? TokenToId(string token);

    /// <summary>The vocabulary string of an id, or null when the id is out of range.</summary>
    string? IdToToken(int id);
}
