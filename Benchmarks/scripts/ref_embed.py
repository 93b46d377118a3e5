#!/usr/bin/env python3
"""The reference pipeline behind `postersim embed`'s contract, in Python (used by `parity.py --self-check`).

    python Benchmarks/scripts/ref_embed.py --cache DIR --model clip|resnet50|vgg16 --json IMAGE...

Prints one JSON object per input, in input order: {"file": <path as given>, "model": ..., "dim": ..., "vector": [...]}.
Decoding is Pillow's `Image.open(f).convert("RGB")`, preprocessing is tools/reference/ref_preprocess.py (the code
that made the goldens), the models load from the Hugging Face cache DIR through bench_models.load_torch, i.e. through
transformers' / timm's own loaders rather than the objects the reference script built in memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models as bm  # noqa: E402

ALIASES = {"clip": "clip", "resnet50": "resnet50", "resnet-50": "resnet50", "vgg16": "vgg16"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--json", action="store_true", required=True, help="JSON lines output (the only format)")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()
    name = ALIASES.get(args.model.lower())
    if name is None:
        ap.error(f"unknown model {args.model!r} (clip, resnet50, vgg16)")
    cache = args.cache.resolve()
    bm.use_cache(cache)
    sys.path.insert(0, str(bm.REFERENCE_DIR))
    import numpy as np
    import torch
    from PIL import Image
    import ref_preprocess

    torch.set_num_threads(2)
    proc = ref_preprocess.processors()[name]
    model = bm.load_torch(name, cache)
    for f in args.images:
        with Image.open(f) as im:
            rgb = Image.fromarray(np.asarray(im.convert("RGB")), "RGB")
        tensor = ref_preprocess.reference_steps(name, proc, rgb)[1]
        with torch.inference_mode():
            vec = model(torch.from_numpy(tensor)[None])[0].numpy()
        print(json.dumps({"file": f, "model": name, "dim": int(vec.shape[0]), "vector": [float(v) for v in vec]}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
