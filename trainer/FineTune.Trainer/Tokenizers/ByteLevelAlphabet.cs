namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// GPT-2's byte-to-character map used by byte-level BPE (GPT-2, Llama-3, Qwen2): every byte becomes one printable
/// character so that BPE works on strings. Bytes '!'..'~', '¡'..'¬', '®'..'ÿ' map to themselves; the other bytes,
/// in increasing order, map to U+0100, U+0101, ... (space becomes 'Ġ' U+0120, '\n' becomes 'Ċ' U+010A).
/// reference: openai/gpt-2 encoder.py bytes_to_unicode; huggingface/tokenizers pre_tokenizers/byte_level.rs bytes_char.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>Character for each byte value.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Byte value for each character below U+0144, or -1 when the character is not in the alphabet.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var inverse = new short[256 + 68];
        Array.Fill(inverse, (short)-1);
        for (int b = 0; b < 256; b++)
            inverse[ByteToChar[b]] = (short)b;
        return inverse;
    }

    /// <summary>The byte a character stands for, or -1 when it is not one of the 256 alphabet characters.</summary>
    public static int ByteOf(char c) => c < CharToByte.Length ? CharToByte[c] : -1;
}
