namespace FineTune.Trainer.Tokenizers;

/// <summary>The BOS, EOS and PAD ids of a tokenizer (null when it has none), as resolved when loading.</summary>
public sealed record SpecialTokenIds(int? Bos, int? Eos, int? Pad);
