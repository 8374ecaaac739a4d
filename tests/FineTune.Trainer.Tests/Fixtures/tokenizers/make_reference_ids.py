#!/usr/bin/env python3
"""Writes reference_ids.json: 60 pseudo-random strings (fixed seed) over a pool of ASCII words, digits, whitespace
runs, contractions, accents, CJK (incl. Extension B), emoji, astral letters/digits, with the ids reference_bpe.py
gives for them under tokenizer.json and tiny_bpe_tokenizer.json. Run: python3 make_reference_ids.py"""
import json
import random

from reference_bpe import encode, load

POOL = ["the", " cat", "Hello", "WORLD", "'s", "'T", "'ll", "don't", "12", "3456789", " 7", "  ", "   ", "\t", "\n",
        "\r\n", "\n\n", " \n ", "!", "?!", "...", "(x)", "{}", "é", "e\u0301", "ñ", "\u00c5", "Straße", "中文", "日本",
        "\U00020000", "\U0002a6d6", "😀", "👍🏽", "👨\u200d👩\u200d👧", "\U0001d400", "\U0001d7ce", "\u0663", "Ⅻ", "\u00a0",
        "a", "b", "x1", "_", "-", "—", "“quoted”", "$", "%"]

rng = random.Random(1234)
texts = [''.join(rng.choice(POOL) for _ in range(rng.randint(1, 16))) for _ in range(60)]
out = {}
for name in ["tokenizer.json", "tiny_bpe_tokenizer.json"]:
    tok = load(name)
    out[name] = [{"text": t, "ids": encode(t, tok)} for t in texts]
with open("reference_ids.json", "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=True, indent=0)
