#!/usr/bin/env python3
"""`make parity`: PosterSim's embeddings of the golden images against the reference vectors, per model.

    python Benchmarks/scripts/parity.py --cache .cache/full-size --swift-cmd ".build/release/postersim embed" [--models ...]
    python Benchmarks/scripts/parity.py --cache .cache/full-size --self-check      # the harness on the Python reference

Reads DIR/goldens/reference.npz (`<file>__<model>` = reference embedding of DIR/goldens/images/<file>, written by
tools/reference/make_fixtures.py --full-size together with the random-weight checkpoints in DIR). For each model it
runs the command once with all golden images:

    <swift-cmd> --model <clip|resnet50|vgg16> --json <absolute image paths...>

with HF_HUB_CACHE=DIR and HF_HUB_OFFLINE=1 in its environment. The command must print one JSON object per input
(lines not starting with "{" are ignored): {"file": <path as given, or its basename>, "model": ..., "dim": D,
"vector": [D floats]}. The script prints, per model, the minimum cosine, the max abs difference and the max abs
difference relative to the reference vector's norm, and exits 1 if any cosine is below --min-cosine (0.9999), an
image has no or a malformed vector, or the command fails.

`--self-check` runs Benchmarks/scripts/ref_embed.py (Pillow + the reference preprocessing + transformers/timm loading the
same cache) as the command, so the whole path (subprocess, JSON, matching, comparison) is exercised before the Swift
side exists; it must report cosines of 1 to float precision.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models as bm  # noqa: E402


class ParityError(Exception):
    pass


def load_goldens(cache: Path, models: list[str]) -> dict[str, dict[str, "object"]]:
    """{model: {file name: reference vector (float64)}}."""
    import numpy as np
    ref = cache / "goldens" / "reference.npz"
    if not ref.is_file():
        raise SystemExit(f"{ref} is missing; write it with tools/reference/make_fixtures.py --full-size --out {cache}")
    out: dict[str, dict] = {m: {} for m in models}
    with np.load(ref) as z:
        for key in z.files:
            file, sep, model = key.rpartition("__")
            if sep and model in out:
                out[model][file] = z[key].astype(np.float64)
    for m, vecs in out.items():
        if not vecs:
            raise SystemExit(f"{ref} has no reference vectors for {m}")
        for f in vecs:
            if not (cache / "goldens" / "images" / f).is_file():
                raise SystemExit(f"golden image {f} is missing from {cache / 'goldens' / 'images'}")
    return out


def run_embed(cmd: list[str], model: str, images: list[Path], cache: Path, verbose: bool) -> dict[str, list]:
    """Run the embed command; {file name: vector} (keys are the basenames of `images`)."""
    full = cmd + ["--model", model, "--json"] + [str(p) for p in images]
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
    if verbose:
        print(f"[{model}] {shlex.join(full)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(full, env=env, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE,
                              text=True)
    except OSError as e:
        raise ParityError(f"cannot run {full[0]}: {e}")
    if proc.returncode != 0:
        tail = "\n  ".join((proc.stderr or "").strip().splitlines()[-15:])
        raise ParityError(f"exit status {proc.returncode}\n  {tail}")
    by_arg = {str(p): p.name for p in images}
    names = set(by_arg.values())
    vectors: dict[str, list] = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
            file, got_model, dim, vec = obj["file"], obj["model"], obj["dim"], obj["vector"]
        except (ValueError, KeyError, TypeError) as e:
            raise ParityError(f"malformed output line ({e}): {line[:200]}")
        name = by_arg.get(file, file if file in names else None)
        if name is None:
            raise ParityError(f"output for a file that was not asked for: {file!r}")
        if name in vectors:
            raise ParityError(f"two vectors for {file!r}")
        if str(got_model).lower() not in (model, bm.MODELS[model].repo.lower()):
            raise ParityError(f"{file}: \"model\" is {got_model!r}, expected {model!r}")
        if not isinstance(vec, list) or not isinstance(dim, int) or len(vec) != dim:
            raise ParityError(f"{file}: \"dim\" {dim!r} does not match the vector's length")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vec):
            raise ParityError(f"{file}: the vector has non-numeric or non-finite entries")
        vectors[name] = vec
    missing = sorted(names - set(vectors))
    if missing:
        raise ParityError(f"no vector for {', '.join(missing)}")
    return vectors


def compare(model: str, want: dict, got: dict) -> dict:
    import numpy as np
    rows = []
    for f, ref in sorted(want.items()):
        vec = np.asarray(got[f], np.float64)
        if vec.shape != ref.shape:
            raise ParityError(f"{model} {f}: dim {vec.shape[0]}, reference {ref.shape[0]}")
        denom = np.linalg.norm(vec) * np.linalg.norm(ref)
        cos = float(vec @ ref / denom) if denom > 0 else float("nan")
        diff = float(np.abs(vec - ref).max())
        rows.append({"file": f, "cosine": cos, "max_abs_diff": diff, "rel_diff": diff / float(np.linalg.norm(ref))})
    worst = min(rows, key=lambda r: r["cosine"] if not math.isnan(r["cosine"]) else -2.0)
    return {"model": model, "images": len(rows), "min_cosine": worst["cosine"], "worst_file": worst["file"],
            "max_abs_diff": max(r["max_abs_diff"] for r in rows),
            "max_rel_diff": max(r["rel_diff"] for r in rows), "per_image": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="the cache the goldens were written with")
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--swift-cmd", help="embed command, e.g. \".build/release/postersim embed\"")
    how.add_argument("--self-check", action="store_true", help="use Benchmarks/scripts/ref_embed.py as the command")
    ap.add_argument("--models", default=",".join(bm.MODEL_NAMES))
    ap.add_argument("--min-cosine", type=float, default=0.9999)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--verbose", action="store_true", help="show the commands and pass their stderr through")
    args = ap.parse_args()

    cache = args.cache.resolve()
    models = bm.parse_models(args.models)
    goldens = load_goldens(cache, models)
    if args.self_check:
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "ref_embed.py"), "--cache", str(cache)]
    else:
        cmd = shlex.split(args.swift_cmd)

    results, failures = [], []
    for m in models:
        images = [cache / "goldens" / "images" / f for f in sorted(goldens[m])]
        try:
            got = run_embed(cmd, m, images, cache, args.verbose)
            res = compare(m, goldens[m], got)
            if not res["min_cosine"] >= args.min_cosine:  # also catches NaN
                failures.append(f"{m}: min cosine {res['min_cosine']:.9f} < {args.min_cosine} ({res['worst_file']})")
            results.append(res)
        except ParityError as e:
            failures.append(f"{m}: {e}")
            results.append({"model": m, "error": str(e)})

    if args.json:
        print(json.dumps({"command": shlex.join(cmd), "min_cosine_required": args.min_cosine, "results": results,
                          "ok": not failures}, indent=2))
    else:
        print(f"parity: {shlex.join(cmd)}  (cache {cache}; required min cosine {args.min_cosine})")
        print_table(results, [("min cosine", "min_cosine", 13, ".9f"), ("max abs diff", "max_abs_diff", 13, ".3e"),
                              ("max diff/|ref|", "max_rel_diff", 15, ".3e")], failures, "parity")
    return 1 if failures else 0


def print_table(results, columns, failures, name):
    """One row per model (model, images, then `columns` as (title, key, width, format)), the failures, a verdict."""
    head = f"{'model':<9} {'images':>6} " + " ".join(f"{title:>{width}}" for title, _, width, _ in columns) + "  worst"
    print(head)
    print("-" * len(head))
    for r in results:
        if "error" in r:
            print(f"{r['model']:<9} FAILED")
            continue
        cells = " ".join(f"{r[key]:>{width}{fmt}}" for _, key, width, fmt in columns)
        print(f"{r['model']:<9} {r['images']:>6} {cells}  {r['worst_file']}")
    for f in failures:
        print("FAIL", f)
    print(f"{name}: OK" if not failures else f"{name}: FAILED")


if __name__ == "__main__":
    sys.exit(main())
