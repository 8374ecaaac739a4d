namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// A Hugging Face tokenizer.json with a BPE model, loaded by <see cref="TokenizerJsonReader"/>. Encoding runs the
/// same pipeline as huggingface/tokenizers: added tokens are split out of the raw text first, every other segment
/// is normalized, pre-tokenized into pieces and BPE-encoded; the post-processor's ids (e.g. BOS) are added when
/// asked. Decoding maps ids to token strings and runs the decoder chain. Covers byte-level BPE (GPT-2, Llama-3,
/// Qwen2) and SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama).
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    private readonly AddedTokenMatcher _addedTokenMatcher;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizer _preTokenizer;
    private readonly BpeModel _model;
    private readonly PostProcessor _postProcessor;
    private readonly TokenDecoder _decoder;

    internal HfTokenizer(string source, IReadOnlyList<AddedToken> addedTokens, TextNormalizer? normalizer,
        PreTokenizer preTokenizer, BpeModel model, PostProcessor postProcessor, TokenDecoder decoder,
        SpecialTokenIds specialIds)
    {
        Source = source;
        AddedTokens = addedTokens;
        _addedTokenMatcher = new AddedTokenMatcher(addedTokens);
        _addedById = new Dictionary<int, AddedToken>();
        _addedByContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (AddedToken token in addedTokens)
        {
            _addedById[token.Id] = token;
            _addedByContent[token.Content] = token;
        }
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor;
        _decoder = decoder;
        BosId = specialIds.Bos;
        EosId = specialIds.Eos;
        PadId = specialIds.Pad;
        int maxAddedId = addedTokens.Count == 0 ? -1 : addedTokens.Max(t => t.Id);
        VocabularyCount = Math.Max(model.MaxId, maxAddedId) + 1;
    }

    public string Source { get; }
    public int VocabularyCount { get; }
    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Ids the post-processor puts before the text when encoding with addSpecialTokens (e.g. BOS).</summary>
    public IReadOnlyList<int> PrefixIds => _postProcessor.PrefixIds;

    /// <summary>Ids the post-processor puts after the text when encoding with addSpecialTokens.</summary>
    public IReadOnlyList<int> SuffixIds => _postProcessor.SuffixIds;

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens)
            ids.AddRange(_postProcessor.PrefixIds);
        List<AddedTokenMatcher.Segment> segments = _addedTokenMatcher.Split(text);
        for (int s = 0; s < segments.Count; s++)
        {
            var segment = segments[s];
            if (segment.TokenId is int addedId)
            {
                ids.Add(addedId);
                continue;
            }
            string normalized = _normalizer?.Normalize(segment.Text) ?? segment.Text;
            foreach (string piece in _preTokenizer.Split(normalized, isFirstSegment: s == 0))
                _model.EncodePiece(piece, ids);
        }
        if (addSpecialTokens)
            ids.AddRange(_postProcessor.SuffixIds);
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (_addedById.TryGetValue(id, out AddedToken? added))
            {
                if (!(skipSpecialTokens && added.Special))
                    tokens.Add(added.Content);
                continue;
            }
            // Ids the vocabulary does not hold (a model's padded embedding rows) are dropped, as tokenizers does.
            if (_model.IdToToken(id) is string token)
                tokens.Add(token);
        }
        return _decoder.Decode(tokens);
    }

    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out AddedToken? added) ? added.Id : _model.TokenToId(token);

    public string? IdToToken(int id) =>
        _addedById.TryGetValue(id, out AddedToken? added) ? added.Content : _model.IdToToken(id);
}
