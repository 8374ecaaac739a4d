#!/usr/bin/env python3
"""Independent reference for the expected ids in Tokenizers/*Tests.cs: a direct Python implementation of
byte-level BPE (GPT-2 bytes_to_unicode, the tokenizer.json Split regex run with the `regex` module, which matches
code points like Rust, NFC from unicodedata, lowest-rank-first merges, ignore_merges, added tokens split first).
It shares no code with the C# implementation. Needs the `regex` package (pip install regex). Run: python3 reference_bpe.py tokenizer.json "text" ...
Prints one line of space-separated ids per text (texts are ASCII with Python escapes: \\n, \\u0301, \\U0001F600)."""
import json
import sys
import unicodedata

import regex


def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def load(path):
    t = json.load(open(path, encoding='utf-8'))
    model = t['model']
    vocab = model['vocab']
    merges = [tuple(m.split(' ')) if isinstance(m, str) else tuple(m) for m in model['merges']]
    ranks = {m: i for i, m in enumerate(merges)}
    pre = t['pre_tokenizer']
    steps = pre['pretokenizers'] if pre['type'] == 'Sequence' else [pre]
    split = [s for s in steps if s['type'] == 'Split'][0]['pattern']['Regex']
    nfc = (t.get('normalizer') or {}).get('type') == 'NFC'
    added = {a['content']: a['id'] for a in t.get('added_tokens', [])}
    return vocab, ranks, regex.compile(split), nfc, added, model.get('ignore_merges', False)


def bpe(word, vocab, ranks, ignore_merges):
    if ignore_merges and word in vocab:
        return [vocab[word]]
    # Characters missing from the vocab (no unk, no byte fallback) are skipped before merging, as HF's
    # BPE::merge_word does, so their neighbours become adjacent.
    parts = [c for c in word if c in vocab]
    while len(parts) > 1:
        best = min(range(len(parts) - 1), key=lambda i: (ranks.get((parts[i], parts[i + 1]), 1 << 30), i))
        if (parts[best], parts[best + 1]) not in ranks:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [vocab[p] for p in parts]


def encode(text, tok):
    vocab, ranks, pattern, nfc, added, ignore_merges = tok
    b2u = bytes_to_unicode()
    segments = [text]
    if added:
        alternation = '|'.join(regex.escape(a) for a in sorted(added, key=len, reverse=True))
        segments = regex.split('(' + alternation + ')', text)
    ids = []
    for seg in segments:
        if seg in added:
            ids.append(added[seg])
            continue
        if nfc:
            seg = unicodedata.normalize('NFC', seg)
        for piece in pattern.findall(seg):
            mapped = ''.join(b2u[b] for b in piece.encode('utf-8'))
            ids.extend(bpe(mapped, vocab, ranks, ignore_merges))
    return ids


if __name__ == '__main__':
    tok = load(sys.argv[1])
    for text in sys.argv[2:]:
        text = text.encode('ascii').decode('unicode_escape')  # write non-ASCII as \uXXXX / \UXXXXXXXX
        print(' '.join(str(i) for i in encode(text, tok)))
