#!/usr/bin/env python3
"""Export PosterSim's three image models from a Hugging Face cache to ONNX, and check ORT against PyTorch.

    python Benchmarks/scripts/export_onnx.py --cache .cache/full-size --out .cache/onnx [--models clip,resnet50,vgg16] [--force]

Writes OUT/<model>.onnx (input `pixel_values` float32 [batch,3,224,224], output `embedding` float32 [batch,dim];
the batch axis is dynamic) and OUT/<model>.json (what produced it). A model is re-exported only when its .onnx is
missing, older than its weight files, or was made by another exporter setup (see `export_stamp`).

Exporter: torch.onnx's TorchScript exporter (`dynamo=False`), opset 17 (ONNX Runtime 1.31 runs it natively, and
opset 17 has LayerNormalization as a single op). The dynamo exporter would need onnxscript, which the pinned
reference environment does not carry.

After each export the ONNX model runs in ONNX Runtime (CPU, 2 threads, all graph optimisations) on the
reference tensors of the golden images (DIR/goldens/reference.npz, or a seeded random batch if absent), at batch 1
and at the full batch, and the script prints max |ORT - PyTorch| and the minimum cosine; it exits non-zero if the
cosine falls below 0.9999 or the shapes differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models as bm  # noqa: E402

OPSET = 17
COSINE_FLOOR = 0.9999


def export_stamp() -> dict:
    import onnx
    import torch
    import transformers
    import timm
    return {"opset": OPSET, "exporter": "torchscript", "torch": torch.__version__, "onnx": onnx.__version__,
            "transformers": transformers.__version__, "timm": timm.__version__}


def is_fresh(onnx_path: Path, meta_path: Path, weights: list[Path], stamp: dict) -> bool:
    if not onnx_path.is_file() or not meta_path.is_file():
        return False
    newest_weight = max(p.stat().st_mtime for p in weights)
    if onnx_path.stat().st_mtime <= newest_weight:
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("stamp") == stamp and meta.get("weights") == [str(p) for p in weights]


def export_one(name: str, cache: Path, out: Path, force: bool, stamp: dict) -> Path:
    import torch
    onnx_path = out / f"{name}.onnx"
    meta_path = out / f"{name}.json"
    weights = bm.weight_files(cache, name)
    if not force and is_fresh(onnx_path, meta_path, weights, stamp):
        print(f"{name}: {onnx_path} is up to date (newer than its weights); not re-exported")
        return onnx_path

    model = bm.load_torch(name, cache)
    example = torch.zeros(2, 3, 224, 224)  # batch 2 so the tracer cannot bake batch 1 in
    tmp = out / f".{name}.onnx.partial"
    t0 = time.perf_counter()
    with torch.inference_mode(), warnings.catch_warnings():
        # The legacy exporter is deprecated (we choose it on purpose, see the module doc); the tracer warns about
        # Python-side shape checks (e.g. ResNet's channel count) that are constant for these models.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                          input_names=["pixel_values"], output_names=["embedding"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "embedding": {0: "batch"}},
                          do_constant_folding=True)
    import onnx
    onnx.checker.check_model(str(tmp))  # path form: works for files above the 2 GB protobuf limit too
    os.replace(tmp, onnx_path)
    meta_path.write_text(json.dumps({"model": name, "repo": bm.MODELS[name].repo, "dim": bm.MODELS[name].dim,
                                     "weights": [str(p) for p in weights], "stamp": stamp,
                                     "bytes": onnx_path.stat().st_size}, indent=2) + "\n")
    print(f"{name}: exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    del model
    return onnx_path


def compare(a, b) -> tuple[float, float]:
    """(max abs difference, minimum row cosine) of two (N, D) arrays, in float64."""
    import numpy as np
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(np.abs(a - b).max()), float(cos.min())


def check_one(name: str, cache: Path, onnx_path: Path, threads: int) -> bool:
    import numpy as np
    import torch
    x, what = bm.sample_inputs(cache, name)
    model = bm.load_torch(name, cache)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    del model
    sess = bm.ort_session(onnx_path, threads)
    ok = True
    for label, batch in (("batch 1", x[:1]), (f"batch {len(x)}", x)):
        got = sess.run(["embedding"], {"pixel_values": batch})[0]
        if got.shape != (len(batch), bm.MODELS[name].dim):
            print(f"{name}: ORT {label}: shape {got.shape}, expected {(len(batch), bm.MODELS[name].dim)}")
            ok = False
            continue
        diff, cos = compare(got, want[:len(batch)])
        good = cos >= COSINE_FLOOR
        ok &= good
        scale = float(np.abs(want[:len(batch)]).max())
        print(f"{name}: ORT vs PyTorch, {label} ({what}): max abs diff {diff:.3e} (max |PyTorch| {scale:.3g}), "
              f"min cosine {cos:.9f}"
              f"{'' if good else f'  BELOW {COSINE_FLOOR}'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="Hugging Face cache directory (full-size models)")
    ap.add_argument("--out", type=Path, required=True, help="directory for <model>.onnx")
    ap.add_argument("--models", default=",".join(bm.MODEL_NAMES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="re-export even if up to date")
    ap.add_argument("--no-check", action="store_true", help="skip the ORT vs PyTorch comparison")
    args = ap.parse_args()

    cache = args.cache.resolve()
    bm.use_cache(cache)
    import torch
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = export_stamp()
    ok = True
    for name in bm.parse_models(args.models):
        path = export_one(name, cache, args.out, args.force, stamp)
        if not args.no_check:
            ok &= check_one(name, cache, path, args.threads)
    if not ok:
        print("export_onnx: ONNX Runtime disagrees with PyTorch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
