namespace FineTune.Trainer.Tokenizers;

/// <summary>
/// One entry of tokenizer.json `added_tokens`: a string matched in the raw text before normalization and BPE, so it
/// always becomes exactly <see cref="Id"/>. <see cref="Special"/> tokens (BOS, EOS, chat markers) are dropped by
/// decoding with skipSpecialTokens. lstrip/rstrip absorb whitespace on that side; single_word only matches when
/// no word character touches the match.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LeftStrip, bool RightStrip, bool SingleWord);
