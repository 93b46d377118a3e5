"""A small byte-level BPE vocabulary of our own, in the CLIP layout, plus CLIP-format vocab/merges writers.

CLIP's vocabulary layout (as its tokenizer defines it): the 256 byte symbols of the GPT-2 style byte->unicode
table, the same 256 symbols with the end-of-word suffix "</w>", one token per merge (in merge order), then
"<|startoftext|>" and "<|endoftext|>". Our merges are learned here by a plain frequency-count BPE trainer over a
generated English corpus, so nothing of OpenAI's vocabulary is used or committed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import regex  # installed with transformers

# Same pre-tokenisation regex transformers' CLIPTokenizer applies (after NFC, whitespace collapse, lowercasing).
PRETOKEN = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
EOW = "</w>"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """Byte -> printable unicode char: printable Latin-1 bytes map to themselves, the others to 256+n in order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    # The vocabulary lists the kept bytes first, then the remapped ones (the table's value order).
    return dict(sorted(table.items(), key=lambda kv: (kv[0] not in keep, kv[0] if kv[0] in keep else ord(kv[1]))))


def corpus(seed: int = 1234, n_generated: int = 600) -> list[str]:
    fixed = [
        "A lonely astronaut drifts past the rings of Saturn.",
        "The detective walks through the rainy city at night.",
        "Two friends start a band and travel across the country.",
        "A haunted house on the hill waits for new owners.",
        "The dragon guards a treasure hidden under the mountain.",
        "Love letters arrive twenty years too late.",
        "An old sailor tells stories about the storm of the century.",
        "Robots learn to paint sunsets in a quiet village.",
        "The heist goes wrong when the alarm starts ringing.",
        "A young chef opens a restaurant in Paris.",
    ]
    adjectives = ["dark", "bright", "silent", "lost", "golden", "broken", "wild", "hidden", "last", "first", "red",
                  "blue", "cold", "burning", "secret", "endless", "little", "great", "strange", "final"]
    nouns = ["city", "night", "river", "king", "queen", "summer", "winter", "garden", "island", "planet", "station",
             "heart", "shadow", "mirror", "forest", "ocean", "train", "road", "letter", "dream", "song", "war",
             "storm", "star", "world", "house", "door", "family", "stranger", "hero", "monster", "ghost", "movie",
             "poster", "story", "journey", "mystery", "adventure", "comedy", "drama"]
    verbs = ["finds", "loses", "chases", "remembers", "saves", "destroys", "follows", "watches", "crosses", "builds",
             "returns to", "escapes from", "dreams of", "fights for", "sings about"]
    rng = np.random.default_rng(seed)
    out = list(fixed)
    for _ in range(n_generated):
        a, b = rng.choice(adjectives, 2)
        n1, n2 = rng.choice(nouns, 2)
        v = rng.choice(verbs)
        form = int(rng.integers(0, 4))
        if form == 0:
            out.append(f"The {a} {n1} {v} the {b} {n2}.")
        elif form == 1:
            out.append(f"{n1.capitalize()} of the {a} {n2}")
        elif form == 2:
            out.append(f"When a {a} {n1} {v} a {n2}, everything changes!")
        else:
            out.append(f"Return of the {b} {n2}: part {int(rng.integers(2, 10))}")
    return out


def train_bpe(texts: list[str], n_merges: int) -> list[tuple[str, str]]:
    """Greedy BPE: repeatedly merge the most frequent adjacent pair (ties: lexicographically smallest pair)."""
    b2u = bytes_to_unicode()
    words: Counter = Counter()
    for t in texts:
        t = " ".join(t.split()).lower()
        for w in PRETOKEN.findall(t):
            chars = [b2u[b] for b in w.encode("utf-8")]
            words[tuple(chars[:-1] + [chars[-1] + EOW])] += 1
    merges: list[tuple[str, str]] = []
    vocab_words = dict(words)
    for _ in range(n_merges):
        pairs: Counter = Counter()
        for w, c in vocab_words.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        new_words = {}
        for w, c in vocab_words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + c
        vocab_words = new_words
    return merges


def clip_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + EOW for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {}
    for t in tokens:
        assert t not in vocab, f"duplicate token {t!r}"
        vocab[t] = len(vocab)
    return vocab


def write_clip_tokenizer_files(directory: Path, merges: list[tuple[str, str]], *, with_configs: bool = True) -> int:
    """vocab.json + merges.txt (+ tokenizer_config.json, special_tokens_map.json). Returns the vocabulary size."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = clip_vocab(merges)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                          encoding="utf-8")
    if with_configs:
        special = {"content": None, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}
        stm = {"bos_token": dict(special, content=BOS), "eos_token": dict(special, content=EOS),
               "unk_token": dict(special, content=EOS), "pad_token": EOS}
        (directory / "special_tokens_map.json").write_text(json.dumps(stm, indent=2) + "\n")
        cfg = {"add_prefix_space": False, "bos_token": stm["bos_token"], "do_lower_case": True,
               "eos_token": stm["eos_token"], "errors": "replace", "model_max_length": 77, "pad_token": EOS,
               "tokenizer_class": "CLIPTokenizer", "unk_token": stm["unk_token"]}
        (directory / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return len(vocab)


def real_clip_merges() -> list[tuple[str, str]] | None:
    """Merges of the real CLIP BPE as shipped inside the installed open_clip wheel (never written to the repo)."""
    import gzip
    try:
        import open_clip
    except ImportError:
        return None
    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        return None
    lines = gzip.open(path).read().decode("utf-8").split("\n")
    # As CLIP's own tokenizer does: skip the header line, keep 49152 - 256 - 2 merges.
    merges = lines[1:49152 - 256 - 2 + 1]
    return [tuple(m.split()) for m in merges]


# Texts whose ids are recorded: punctuation, case, whitespace runs, accents (composed and decomposed), emoji, CJK,
# contractions, digits, markup-ish strings, and an over-long text (> 77 tokens).
TEXTS = [
    "a movie poster",
    "A Movie Poster",
    "THE DARK KNIGHT",
    "the   dark\tknight\n\nreturns",
    "  leading and trailing spaces  ",
    "Don't stop! It's what they'd call \"the end\"...",
    "don’t (curly apostrophe) vs don't",
    "Amélie — Le Fabuleux Destin d’Amélie Poulain",
    "Ame\u0301lie with a decomposed accent",
    "Straße, Ærøskøbing, İstanbul, ΣΊΣΥΦΟΣ",
    "🎬🍿 movie night 🎥",
    "Spirited Away 千と千尋の神隠し 2001",
    "电影海报 영화 포스터",
    "2001: A Space Odyssey (1968) — $9.99 @ 50% off #sci-fi",
    "Rock &amp; Roll &lt;live&gt;",
    "x",
    "",
    "<|startoftext|>literal special tokens<|endoftext|>",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    " ".join(["an extremely long tagline that keeps going"] * 12),
]
