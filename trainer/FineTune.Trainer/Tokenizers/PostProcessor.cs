namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// The `post_processor` of a tokenizer.json, applied when encoding with addSpecialTokens: the ids placed before and
/// after the encoded text for a single sequence. TemplateProcessing (`single`: SpecialToken items around
/// Sequence "A"; Llama 2 / TinyLlama `&lt;s&gt; $A`, Llama 3 `&lt;|begin_of_text|&gt; $A`), BertProcessing and
/// RobertaProcessing (cls A sep) are supported; ByteLevel only adjusts offsets, so it adds nothing; Sequence
/// concatenates. Pair templates are not used (training encodes single sequences).
/// reference: huggingface/tokenizers tokenizers/src/processors/{template,bert,roberta,sequence}.rs.
/// </summary>
internal sealed class PostProcessor
{
    public static readonly PostProcessor None = new([], []);

    public PostProcessor(int[] prefixIds, int[] suffixIds)
    {
        PrefixIds = prefixIds;
        SuffixIds = suffixIds;
    }

    /// <summary>Ids before the text (e.g. BOS).</summary>
    public int[] PrefixIds { get; }

    /// <summary>Ids after the text (e.g. EOS when the template declares one).</summary>
    public int[] SuffixIds { get; }

    public static PostProcessor Sequence(IEnumerable<PostProcessor> parts)
    {
        var prefix = new List<int>();
        var suffix = new List<int>();
        foreach (PostProcessor part in parts)
        {
            prefix.AddRange(part.PrefixIds);
            suffix.AddRange(part.SuffixIds);
        }
        return new PostProcessor(prefix.ToArray(), suffix.ToArray());
    }
}
