using System.Text;

namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// The tokenizer for from-scratch runs: ids 0..255 are the UTF-8 bytes of the text, then 256 = BOS, 257 = EOS,
/// 258 = PAD. Special tokens are never matched inside text (the text "&lt;bos&gt;" is five bytes), so every string
/// round-trips exactly. Invalid UTF-8 produced by a model decodes to U+FFFD.
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public const int ByteIdCount = 256;
    public const int Bos = 256;
    public const int Eos = 257;
    public const int Pad = 258;

    private static readonly string[] s_specialNames = ["<bos>", "<eos>", "<pad>"];

    public int VocabularyCount => ByteIdCount + s_specialNames.Length;
    public int? BosId => Bos;
    public int? EosId => Eos;
    public int? PadId => Pad;
    public string Source => "byte";
    public IReadOnlyList<int> PrefixIds { get; } = [Bos];

    public int[] Encode(string text, bool addSpecialTokens = false)
    {
        int byteCount = Encoding.UTF8.GetByteCount(text);
        int offset = addSpecialTokens ? 1 : 0;
        var ids = new int[byteCount + offset];
        if (addSpecialTokens)
            ids[0] = Bos;
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        for (int i = 0; i < bytes.Length; i++)
            ids[offset + i] = bytes[i];
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var text = new StringBuilder();
        var pending = new List<byte>();
        foreach (int id in ids)
        {
            if (id >= 0 && id < ByteIdCount)
            {
                pending.Add((byte)id);
                continue;
            }
            text.Append(Encoding.UTF8.GetString(pending.ToArray()));
            pending.Clear();
            if (!skipSpecialTokens)
                text.Append(IdToToken(id) ?? "\uFFFD");
        }
        text.Append(Encoding.UTF8.GetString(pending.ToArray()));
        return text.ToString();
    }

    public int? TokenToId(string token)
    {
        int special = Array.IndexOf(s_specialNames, token);
        if (special >= 0)
            return ByteIdCount + special;
        return token.Length == 1 && token[0] < 128 ? token[0] : null;
    }

    public string? IdToToken(int id)
    {
        if (id >= 0 && id < ByteIdCount)
            return id < 128 ? ((char)id).ToString() : $"<0x{id:X2}>";
        if (id >= ByteIdCount && id < VocabularyCount)
            return s_specialNames[id - ByteIdCount];
        return null;
    }
}
