#!/usr/bin/python3
"""Build a small GPT-NeoX-style byte-level BPE tokenizer.json for tests, and encode with it.

Mamba checkpoints ship the GPT-NeoX tokenizer: NFC normalisation, the GPT-2 pre-tokenising regex
with a byte-level alphabet, BPE merges, and <|endoftext|> as a special token. This script trains
such a tokenizer on a short built-in text (deterministically, with nothing downloaded) and writes
tokenizer.json + tokenizer_config.json in the layout Hugging Face's `tokenizers` library reads.

It is also an independent reference encoder (written from the algorithm, not from any tokenizer
library), used by make_interop_fixtures.py to record the ids the JavaScript tokenizer must give.

    /usr/bin/python3 tools/make_tokenizer.py OUT_DIR      # writes the two files
"""

import json
import os
import sys
import unicodedata

SPECIALS = ["<|endoftext|>", "<|padding|>"]
N_MERGES = 200

CORPUS = """\
The selective state space model reads a sequence one token at a time and keeps a small state.
It does not look back over the whole context, so memory stays the same for every new token.
Training runs in parallel over the sequence; generation runs step by step from the state.
A state space model with input-dependent parameters can choose what to remember and what to forget.
Mamba was trained on the Pile, a large corpus of English text, code and papers.
The tokenizer splits words, numbers 12345 and 2024, punctuation like !?; and spaces.
Café, naïve, résumé and façade keep their accents; 日本語 and 中文 are several bytes each.
Emoji such as 🙂 and 🚀 take four bytes in UTF-8. Don't, can't, we'll, they're, I'm, you've, he'd.
    Indented lines and\ttabs\nand new lines are whitespace too.
The the the and and of of to to in in state state model model token token.
"""


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def _cls(ch):
    cat = unicodedata.category(ch)
    if cat.startswith("L"):
        return "L"
    if cat.startswith("N"):
        return "N"
    if ch.isspace():
        return "S"
    return "P"


def pretokenize(text):
    """The GPT-2 pattern 's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+, by hand."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "'":
            for suf in ("s", "t", "re", "ve", "m", "ll", "d"):
                if text.startswith(suf, i + 1):
                    out.append(text[i:i + 1 + len(suf)])
                    i += 1 + len(suf)
                    break
            else:
                suf = None
            if suf is not None:
                continue
        j = i + 1 if text[i] == " " and i + 1 < n and _cls(text[i + 1]) != "S" else i
        c = _cls(text[j])
        if c in ("L", "N", "P"):
            k = j
            while k < n and _cls(text[k]) == c:
                k += 1
            out.append(text[i:k])
            i = k
            continue
        # whitespace run: leave its last character to a following word (\s+(?!\S)), unless it is alone
        k = i
        while k < n and _cls(text[k]) == "S":
            k += 1
        if k < n and k - i > 1:
            k -= 1
        out.append(text[i:k])
        i = k
    return out


def to_byte_chars(piece):
    return "".join(BYTE_CHAR[b] for b in piece.encode("utf-8"))


def train(corpus, n_merges):
    words = {}
    for w in pretokenize(unicodedata.normalize("NFC", corpus)):
        t = tuple(to_byte_chars(w))
        words[t] = words.get(t, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + f
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, ties by string order
        merges.append(best)
        new = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + f
        words = new
    return merges


def build(n_merges=N_MERGES):
    merges = train(CORPUS, n_merges)
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab[BYTE_CHAR[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, s in enumerate(SPECIALS)
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    config = {
        "add_bos_token": False, "add_eos_token": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 2048, "tokenizer_class": "GPTNeoXTokenizer",
    }
    return tok, config


def encode(tok, text):
    """Reference encoding: split out special tokens, NFC, pre-tokenise, byte-map, apply merges by rank."""
    vocab = tok["model"]["vocab"]
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(tok["model"]["merges"])}
    specials = [t["content"] for t in tok["added_tokens"]]
    ids = []
    i = 0
    while i < len(text):
        nxt = min(((text.find(s, i), s) for s in specials if text.find(s, i) >= 0), default=(len(text), None))
        chunk = text[i:nxt[0]]
        for piece in pretokenize(unicodedata.normalize("NFC", chunk)):
            parts = list(to_byte_chars(piece))
            while len(parts) > 1:
                best = min(range(len(parts) - 1), key=lambda k: ranks.get((parts[k], parts[k + 1]), 1 << 30))
                if (parts[best], parts[best + 1]) not in ranks:
                    break
                parts[best:best + 2] = [parts[best] + parts[best + 1]]
            ids.extend(vocab[p] for p in parts)
        if nxt[1] is not None:
            ids.append(vocab[nxt[1]])
            i = nxt[0] + len(nxt[1])
        else:
            i = len(text)
    return ids


def decode(tok, ids, skip_special=False):
    inv = {i: s for s, i in tok["model"]["vocab"].items()}
    specials = {t["id"] for t in tok["added_tokens"]}
    out = bytearray()
    for i in ids:
        if i in specials:
            if not skip_special:
                out += inv[i].encode("utf-8")
            continue
        out += bytes(CHAR_BYTE[c] for c in inv[i])
    return out.decode("utf-8", errors="replace")


def write(out_dir):
    tok, config = build()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return tok


if __name__ == "__main__":
    t = write(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(f"tokenizer: {len(t['model']['vocab'])} tokens, {len(t['model']['merges'])} merges")
