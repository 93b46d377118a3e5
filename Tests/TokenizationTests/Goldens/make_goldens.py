"""Reference ids for the Tokenization tests, beyond Tests/Fixtures/embeddings/clip_text.json: tricky and random texts
under the tiny fixture vocabulary (three special-token configurations) and under the real CLIP vocabulary (built from
open_clip's bpe_simple_vocab_16e6.txt.gz in a temp dir, as tools/reference does; only ids are written here), plus small
gzip streams for the gzip reader.

Run with the reference environment from the package root:
    .venv-reference/bin/python Tests/TokenizationTests/Goldens/make_goldens.py
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

from transformers import CLIPTokenizer

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent
FIXTURE = ROOT / "Tests/Fixtures/checkpoints/clip"
sys.path.insert(0, str(ROOT / "tools/reference"))
import ref_tokenizer  # noqa: E402

TRICKY = [
    "<|ENDOFTEXT|>x", "<|STARTOFTEXT|>x", "<|startoftext|>!!", "<|endoftext|>!!", "a<|endoftext|>b", "!<|endoftext|>",
    "<|endoftext|", "<|startoftext|", "<<|startoftext|>>", "<|end<|endoftext|>oftext|>",
    "<|startoftext|><|endoftext|>", "<|endoftext|><|endoftext|>", "<|Start\u200bOfText|>", "<|startoftext |>",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ", "İi İSTANBUL", "ẞ STRASSE ß", "\u212a\u212b\u2126", "Ⅻ ⅻ Ⓐⓑ", "ᎠᎡᎢ", "ǅungla ǲ",
    "a\u00a0b", "a\u3000b", "a\u180eb", "a\u200bb", "a\u0085b", "a\u2028b\u2029c", "a\x0bb\x0cc\x1cd\x1fe",
    "a\x00b\x01c\x7fd\x80e\x9f", "\ufeffbom", "tab\tnew\nline\r\ncr",
    "'S 'RE 'Ll 'VE 'M 'D 'T", "x'sam", "''s", "!'s", "'", "''''", "'ll've", "he's'd", "it'z 'r 'v 'l",
    "don’t", "don‘t", "٣٤ ² Ⅻ ½ ١٢٣", "ªº ʰ ˢ", "q\u0301\u0302", "\u0301start", "a\u0308\u0301", "A\u030a",
    "\u1100\u1161\u11a8 \u1100\u1161", "\u0958 \u0915\u093c", "ﬁ ﬀ ﬃ", "Ａ１ＢＣ", "𝐀𝐁𝐂 𝟏𝟐",
    "\U00031350 \U0001E4D0 \u1C89 \uA7CB", "x\U00031350x x\u1C8Ax", "x\U00016EA5x x\U00016EC5x x\U00018D0Cx",
    "\U000E004E\u032d \U0001F600\u0301", "👩\u200d👩\u200d👧 🇫🇷 👍🏽 1️⃣ ❤️",
    "مَرْحَبًا بِكُمْ", "שָׁלוֹם", "สวัสดีครับ", "नमस्ते दुनिया", "Привет, МИР!", "Ελληνικά",
    "12345678901234567890", "3.14159 -42 +7 1e10 0x1F", "$$$ €€ £ ¥ ₹ ₿", "...!!!???", "C++ C# F# .NET",
    "http://example.com/path?q=1&r=2#frag", "user@example.com", "#hashtag @mention", "&amp; &lt; &#39;",
    "a" * 300, "ab" * 150, "x" * 80 + " " + "y" * 80,
    "Le Fabuleux Destin d'Amélie Poulain (2001)", "THE LORD OF THE RINGS: THE RETURN OF THE KING",
    "Crouching Tiger, Hidden Dragon 臥虎藏龍", "Pan's Labyrinth / El laberinto del fauno",
    "   ", "\n\n\n", "\t", "",
]


def random_texts(count: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(seed)
    pools = [
        (0x20, 0x7E), (0x00, 0x1F), (0x80, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x52F), (0x590, 0x6FF),
        (0x900, 0xDFF), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x2100, 0x24FF), (0x3000, 0x30FF),
        (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFB00, 0xFFFD), (0x10000, 0x1FFFF), (0x20000, 0x3134F),
        (0xE0000, 0xE007F),
    ]
    out = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(1, 24)):
            lo, hi = rng.choice(pools)
            c = rng.randint(lo, hi)
            if 0xD800 <= c <= 0xDFFF:
                continue
            chars.append(chr(c))
            if rng.random() < 0.2:
                chars.append(" ")
        out.append("".join(chars))
    return out


def encode_all(tok, texts):
    """ids, plus ids_truncated_77 only where truncation changes them."""
    out = []
    for t in texts:
        ids = tok(t)["input_ids"]
        trunc = tok(t, truncation=True, max_length=77)["input_ids"]
        out.append({"ids": ids} if trunc == ids else {"ids": ids, "ids_truncated_77": trunc})
    return out


def main() -> None:
    configs = {}
    # 1. The fixture folder as committed (bos matched normalized, eos raw).
    configs["fixture"] = CLIPTokenizer.from_pretrained(FIXTURE)
    with tempfile.TemporaryDirectory() as d:
        # 2. vocab.json + merges.txt only: both specials matched on raw text.
        for f in ["vocab.json", "merges.txt"]:
            shutil.copy(FIXTURE / f, Path(d) / f)
        configs["vocab_merges_only"] = CLIPTokenizer.from_pretrained(d)
    # 3. tokenizer.json only, every added token normalized (written next to this script for the Swift test).
    with tempfile.TemporaryDirectory() as d:
        configs["fixture"].save_pretrained(d)
        tj = json.loads((Path(d) / "tokenizer.json").read_text(encoding="utf-8"))
    tj["added_tokens"] = [dict(a, normalized=True) for a in tj["added_tokens"]]
    tj_dir = OUT / "tokenizer_json_all_normalized"
    tj_dir.mkdir(exist_ok=True)
    (tj_dir / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    configs["tokenizer_json_all_normalized"] = CLIPTokenizer.from_pretrained(tj_dir)

    # Random texts never contain special tokens, so only the fixture configuration and the real vocabulary see them.
    randoms = random_texts(250)
    texts = TRICKY + randoms
    results = {name: encode_all(tok, TRICKY if name != "fixture" else texts) for name, tok in configs.items()}
    merges = ref_tokenizer.real_clip_merges()
    if merges is not None:
        with tempfile.TemporaryDirectory() as d:
            assert ref_tokenizer.write_clip_tokenizer_files(Path(d), merges) == 49408
            results["real_vocab"] = encode_all(CLIPTokenizer.from_pretrained(d), texts)
    records = [{"text": t, **{name: results[name][i] for name in results if i < len(results[name])}}
               for i, t in enumerate(texts)]
    lines = ",\n".join(json.dumps(r, ensure_ascii=True, separators=(",", ":")) for r in records)
    header = json.dumps({"generator": "Tests/TokenizationTests/Goldens/make_goldens.py (transformers CLIPTokenizer)",
                         "configurations": sorted(results)})[:-1]
    (OUT / "clip_tricky_ids.json").write_text(header + ', "texts": [\n' + lines + "\n]}\n")

    # Gzip streams of the fixture merges: dynamic Huffman, stored, fixed Huffman, and two members in one file.
    payload = (FIXTURE / "merges.txt").read_bytes()
    (OUT / "gzip_dynamic.gz").write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
    (OUT / "gzip_stored.gz").write_bytes(gzip.compress(payload, compresslevel=0, mtime=0))
    fixed = zlib.compressobj(9, zlib.DEFLATED, 16 + 15, 9, zlib.Z_FIXED)
    (OUT / "gzip_fixed.gz").write_bytes(fixed.compress(payload) + fixed.flush())
    (OUT / "gzip_two_members.gz").write_bytes(gzip.compress(payload[:100], mtime=0) + gzip.compress(payload[100:], mtime=0))
    (OUT / "gzip_payload.txt").write_bytes(payload)
    print(f"{len(texts)} texts, configurations: {sorted(results)}")


if __name__ == "__main__":
    main()
