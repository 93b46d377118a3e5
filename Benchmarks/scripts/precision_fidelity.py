#!/usr/bin/env python3
"""`make parity` (bf16 part): PosterSim's vectors at another precision against its own fp32 vectors, per model.

    python Benchmarks/scripts/precision_fidelity.py --cache DIR --swift-cmd ".build/release/postersim embed" \\
        [--precision bf16] [--posters 48] [--models clip,resnet50,vgg16] [--json]

Writes `--posters` generated poster-like images (tools/reference/fixture_images.py `poster`, fixed seeds and sizes)
into DIR/precision-posters/ unless they are there, embeds them with `<swift-cmd> --precision fp32` and
`<swift-cmd> --precision P` (the same JSON contract as parity.py), and reports per model the minimum cosine between
the two vectors of each poster and how well each poster's 10 nearest others (by the model's metric: cosine for
CLIP, euclidean for ResNet-50 and VGG16) agree: the mean and the minimum over posters of |fp32 ∩ P| / 10. Exits 1
when a minimum cosine is below --min-cosine (0.999) or a mean overlap below --min-overlap (0.95), issue 17's bounds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tools" / "reference"))
import bench_models as bm  # noqa: E402
import parity  # noqa: E402

METRIC = {"clip": "cosine", "resnet50": "euclidean", "vgg16": "euclidean"}


def write_posters(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(300, 450), (500, 750), (185, 278), (342, 513), (154, 231), (780, 1170)]
    paths = []
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        path = folder / f"poster_{i:03d}_{w}x{h}.jpg"
        if not path.is_file():  # drawing needs Pillow; posters written before do not
            import fixture_images
            from PIL import Image
            Image.fromarray(fixture_images.poster(w, h, 5000 + i)).save(path, quality=90)
        paths.append(path)
    return paths


def fidelity(reference: dict, candidate: dict, metric: str, k: int) -> dict:
    import numpy as np
    names = sorted(reference)
    a = np.asarray([reference[n] for n in names], np.float64)
    b = np.asarray([candidate[n] for n in names], np.float64)
    cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    def neighbours(x):
        if metric == "cosine":
            u = x / np.linalg.norm(x, axis=1, keepdims=True)
            d = -(u @ u.T)
        else:
            sq = (x * x).sum(1)
            d = sq[:, None] + sq[None, :] - 2 * x @ x.T
        np.fill_diagonal(d, np.inf)
        return [set(np.argsort(row, kind="stable")[:k].tolist()) for row in d]

    depth = min(k, len(names) - 1)
    na, nb = neighbours(a), neighbours(b)
    overlaps = [len(x & y) / depth for x, y in zip(na, nb)]
    worst = int(np.argmin(cosines))
    return {"images": len(names), "min_cosine": float(cosines.min()), "worst_file": names[worst],
            "mean_overlap": float(np.mean(overlaps)), "min_overlap": float(np.min(overlaps))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--swift-cmd", required=True, help="embed command, e.g. \".build/release/postersim embed\"")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--posters", type=int, default=48)
    ap.add_argument("--models", default=",".join(bm.MODEL_NAMES))
    ap.add_argument("--min-cosine", type=float, default=0.999)
    ap.add_argument("--min-overlap", type=float, default=0.95)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cache = args.cache.resolve()
    posters = write_posters(cache / "precision-posters", args.posters)
    cmd = shlex.split(args.swift_cmd)
    results, failures = [], []
    for m in bm.parse_models(args.models):
        try:
            fp32 = parity.run_embed(cmd + ["--precision", "fp32"], m, posters, cache, False)
            other = parity.run_embed(cmd + ["--precision", args.precision], m, posters, cache, False)
        except parity.ParityError as e:
            failures.append(f"{m}: {e}")
            results.append({"model": m, "error": str(e)})
            continue
        res = {"model": m, **fidelity(fp32, other, METRIC[m], 10)}
        if not res["min_cosine"] >= args.min_cosine:
            failures.append(f"{m}: min cosine {res['min_cosine']:.6f} < {args.min_cosine} ({res['worst_file']})")
        if not res["mean_overlap"] >= args.min_overlap:
            failures.append(f"{m}: mean top-10 overlap {res['mean_overlap']:.3f} < {args.min_overlap}")
        results.append(res)
    if args.json:
        print(json.dumps({"precision": args.precision, "results": results, "ok": not failures}, indent=2))
    else:
        print(f"{args.precision} against fp32: {shlex.join(cmd)} on {len(posters)} generated posters")
        parity.print_table(results, [("min cosine", "min_cosine", 11, ".6f"),
                                     ("top-10 overlap mean", "mean_overlap", 20, ".3f"), ("min", "min_overlap", 6, ".2f")],
                           failures, "precision fidelity")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
