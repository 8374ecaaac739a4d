using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Tests.Data;

/// <summary>
/// The byte tokenizer with BOS/EOS spelled as a model's tokenizer spells them ("&lt;s&gt;", "&lt;|eot_id|&gt;"),
/// or absent, so a chat template renders exactly as in the fixtures while every other character stays a byte.
/// </summary>
internal sealed class NamedSpecialsTokenizer(string? bos, string? eos) : ITokenizer
{
    private readonly ByteTokenizer _bytes = new();

    public int VocabularyCount => _bytes.VocabularyCount;
    public int? BosId => bos is null ? null : ByteTokenizer.Bos;
    public int? EosId => eos is null ? null : ByteTokenizer.Eos;
    public int? PadId => null;
    public IReadOnlyList<int> PrefixIds => [];
    public string Source => "test";

    public int[] Encode(string text, bool addSpecialTokens = false) => _bytes.Encode(text);

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false) =>
        _bytes.Decode(ids, skipSpecialTokens).Replace("<bos>", bos, StringComparison.Ordinal).Replace("<eos>", eos, StringComparison.Ordinal);

    public int? TokenToId(string token) => token == bos ? BosId : token == eos ? EosId : null;

    public string? IdToToken(int id) => id == ByteTokenizer.Bos ? bos : id == ByteTokenizer.Eos ? eos : _bytes.IdToToken(id);
}
