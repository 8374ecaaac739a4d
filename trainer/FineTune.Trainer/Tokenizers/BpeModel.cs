using System.Collections.Concurrent;
using System.Text;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// The BPE `model` of a tokenizer.json: a vocabulary (token string to id) and ranked merges. One pre-tokenized piece
/// is encoded by splitting it into characters (Unicode scalar values) and repeatedly merging the adjacent pair of
/// lowest rank, leftmost first, until no pair has a merge. Characters missing from the vocabulary become their UTF-8
/// bytes as `&lt;0xHH&gt;` tokens when byte_fallback is set, else the unk token (consecutive unks fused when fuse_unk),
/// else nothing (dropped, as in huggingface/tokenizers).
/// With ignore_merges, a piece that is itself in the vocabulary is one token (Llama-3).
/// Not supported (rejected when loading): dropout, continuing_subword_prefix, end_of_word_suffix.
/// reference: huggingface/tokenizers tokenizers/src/models/bpe/{model,word}.rs (merge_all uses a heap ordered by
/// (rank, position); picking the minimum (rank, position) pair one merge at a time is the same order).
/// </summary>
internal sealed class BpeModel
{
    private const int MaxCachedPieceLength = 256;
    private const int MaxCacheEntryCount = 200_000;

    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _idToToken;
    private readonly Dictionary<long, (int Rank, int MergedId)> _merges;
    private readonly int[] _byteFallbackIds; // id of <0xHH> for each byte, or -1
    private readonly int[] _bmpCharIds; // id of each one-character BMP token, or -1 (avoids a string per character)
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _ignoreMerges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public BpeModel(Dictionary<string, int> vocabulary, IReadOnlyList<(string Left, string Right)> merges,
        string? unkToken, bool fuseUnk, bool byteFallback, bool ignoreMerges, string sourcePath)
    {
        _vocabulary = vocabulary;
        int maxId = vocabulary.Count == 0 ? -1 : vocabulary.Values.Max();
        _idToToken = new string[maxId + 1];
        foreach (var (token, id) in vocabulary)
        {
            if (id < 0)
                throw new UserErrorException($"{sourcePath}: model.vocab gives token \"{token}\" the negative id {id}; ids must be 0 or more.");
            _idToToken[id] = token;
        }
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocabulary.TryGetValue(left, out int leftId) || !vocabulary.TryGetValue(right, out int rightId))
                throw new UserErrorException($"{sourcePath}: model.merges[{rank}] (\"{left}\", \"{right}\") uses a token missing from model.vocab; the file is inconsistent.");
            if (!vocabulary.TryGetValue(left + right, out int mergedId))
                throw new UserErrorException($"{sourcePath}: model.merges[{rank}] produces \"{left + right}\", which is missing from model.vocab; the file is inconsistent.");
            _merges.TryAdd(PairKey(leftId, rightId), (rank, mergedId));
        }
        if (unkToken is not null)
        {
            if (!vocabulary.TryGetValue(unkToken, out int unkId))
                throw new UserErrorException($"{sourcePath}: model.unk_token \"{unkToken}\" is not in model.vocab.");
            _unkId = unkId;
        }
        _byteFallbackIds = new int[256];
        for (int b = 0; b < 256; b++)
            _byteFallbackIds[b] = byteFallback && vocabulary.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        _bmpCharIds = new int[char.MaxValue + 1];
        Array.Fill(_bmpCharIds, -1);
        foreach (var (token, id) in vocabulary)
            if (token.Length == 1 && !char.IsSurrogate(token[0]))
                _bmpCharIds[token[0]] = id;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
    }

    public int MaxId => _idToToken.Length - 1;

    public int? TokenToId(string token) => _vocabulary.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <summary>Appends the ids of one pre-tokenized piece.</summary>
    public void EncodePiece(string piece, List<int> output)
    {
        if (piece.Length == 0)
            return;
        if (_ignoreMerges && _vocabulary.TryGetValue(piece, out int whole))
        {
            output.Add(whole);
            return;
        }
        if (piece.Length <= MaxCachedPieceLength && _cache.TryGetValue(piece, out int[]? cached))
        {
            output.AddRange(cached);
            return;
        }
        int[] ids = MergeAll(InitialSymbols(piece));
        if (piece.Length <= MaxCachedPieceLength)
        {
            if (_cache.Count >= MaxCacheEntryCount)
                _cache.Clear();
            _cache.TryAdd(piece, ids);
        }
        output.AddRange(ids);
    }

    /// <summary>One id per character of the piece, falling back to bytes or unk for characters not in the vocab.</summary>
    private List<int> InitialSymbols(string piece)
    {
        var symbols = new List<int>(piece.Length);
        Span<byte> utf8 = stackalloc byte[4];
        bool previousWasUnk = false;
        for (int i = 0; i < piece.Length; i++)
        {
            int bmpId = _bmpCharIds[piece[i]];
            if (bmpId >= 0)
            {
                symbols.Add(bmpId);
                previousWasUnk = false;
                continue;
            }
            int charLength = char.IsHighSurrogate(piece[i]) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1]) ? 2 : 1;
            string character = piece.Substring(i, charLength);
            i += charLength - 1;
            if (_vocabulary.TryGetValue(character, out int id))
            {
                symbols.Add(id);
                previousWasUnk = false;
                continue;
            }
            int byteCount = Encoding.UTF8.GetBytes(character, utf8);
            bool allBytesKnown = byteCount > 0;
            for (int b = 0; b < byteCount; b++)
                allBytesKnown &= _byteFallbackIds[utf8[b]] >= 0;
            if (allBytesKnown)
            {
                for (int b = 0; b < byteCount; b++)
                    symbols.Add(_byteFallbackIds[utf8[b]]);
                previousWasUnk = false;
                continue;
            }
            // Without byte fallback or unk the character is dropped, as huggingface/tokenizers does (model.rs
            // merge_word). Real byte-level vocabularies hold all 256 byte characters, so only toy vocabs drop.
            if (_unkId is not int unk)
                continue;
            if (!(_fuseUnk && previousWasUnk))
                symbols.Add(unk);
            previousWasUnk = true;
        }
        return symbols;
    }

    private int[] MergeAll(List<int> symbols)
    {
        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue, bestIndex = -1, bestId = -1;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (_merges.TryGetValue(PairKey(symbols[i], symbols[i + 1]), out var merge) && merge.Rank < bestRank)
                {
                    bestRank = merge.Rank;
                    bestIndex = i;
                    bestId = merge.MergedId;
                }
            }
            if (bestIndex < 0)
                break;
            symbols[bestIndex] = bestId;
            symbols.RemoveAt(bestIndex + 1);
        }
        return symbols.ToArray();
    }

    private static long PairKey(int leftId, int rightId) => ((long)leftId << 32) | (uint)rightId;
}
