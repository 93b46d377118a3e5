#!/usr/bin/env python3
"""`make bench-int8` (fidelity part): would int8 hold issue 17's bounds? Measured with ONNX Runtime's quantizer.

    python Benchmarks/scripts/int8_fidelity.py --cache DIR --onnx DIR2 --swift-cmd ".build/release/postersim" \\
        [--models resnet50,vgg16] [--posters 48] [--exclude REGEX] [--threads 2] [--json]

The engine has no int8 path; before building one, this answers whether the usual static scheme keeps the vectors
close enough. It quantizes DIR2/<model>.onnx (export_onnx.py) with onnxruntime.quantization.quantize_static: QDQ,
s8 weights per output channel, u8 activations with min/max ranges calibrated on every third of the `--posters`
generated posters (precision_fidelity.py's, preprocessed by `<swift-cmd> preprocess`, i.e. exactly as the engine
sees them). That is the scheme oneDNN's int8 convolutions run (u8 source, s8 weights, per-channel output scales;
Benchmarks/Int8Trial/int8_layers.cpp times them). It then embeds all posters with the float32 and the int8 model
and reports issue 17's measures against float32: the minimum cosine (all posters, and the ones not calibrated on),
and the mean and minimum top-10 neighbour overlap (the model's metric), plus ORT's own int8 and float32 speed at
batch 8 (median of alternating runs). `--exclude` keeps the nodes whose name matches in float32 (e.g.
'embedder|stages.3' for ResNet-50's stem and last stage). Exit status 0 unless something fails to run; the bounds
are reported, not enforced (this is a trial, not a gate).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tools" / "reference"))
import bench_models as bm  # noqa: E402
import precision_fidelity as pf  # noqa: E402


def preprocess(cmd: list[str], model: str, posters: list[Path], cache: Path):
    """(N,3,224,224) float32: each poster through `postersim preprocess`, as the engine would see it."""
    import numpy as np
    model_dir = bm.snapshot_dir(cache, bm.MODELS[model].repo)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "t.npy"
        for poster in posters:
            subprocess.run(cmd + ["preprocess", "--model", model, str(poster), "--out", str(target), "--no-batch-dim",
                                  "--model-dir", f"{model}={model_dir}"], check=True)
            out.append(np.load(target))
    return np.stack(out).astype(np.float32)


def quantize(source: Path, target: Path, calibration, exclude: str) -> int:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"pixel_values": calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self.feeds, None)

    names = [node.name for node in onnx.load(str(source)).graph.node]
    excluded = [n for n in names if exclude and re.search(exclude, n)]
    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded)
    return len(excluded)


def embed(session, x, batch: int = 8):
    import numpy as np
    rows = [session.run(["embedding"], {"pixel_values": x[i:i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(rows).reshape(len(x), -1).astype(np.float64)


def speed(sessions: dict, x, rounds: int = 5) -> dict:
    """ms per image at batch len(x): median over `rounds` alternating rounds of each round's median of 3 runs."""
    per = {name: [] for name in sessions}
    for name, s in sessions.items():
        s.run(["embedding"], {"pixel_values": x})  # warm-up
    for _ in range(rounds):
        for name, s in sessions.items():
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                s.run(["embedding"], {"pixel_values": x})
                times.append(time.perf_counter() - t0)
            per[name].append(statistics.median(times) * 1e3 / len(x))
    return {name: statistics.median(v) for name, v in per.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--onnx", type=Path, required=True, help="directory of <model>.onnx (export_onnx.py --out)")
    ap.add_argument("--swift-cmd", required=True, help="the postersim executable (its `preprocess` command)")
    ap.add_argument("--models", default="resnet50,vgg16")
    ap.add_argument("--posters", type=int, default=48)
    ap.add_argument("--exclude", default="", help="regex of ONNX node names kept in float32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import numpy as np
    cache = args.cache.resolve()
    bm.use_cache(cache)
    posters = pf.write_posters(cache / "precision-posters", args.posters)
    cmd = shlex.split(args.swift_cmd)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in bm.parse_models(args.models):
            x = preprocess(cmd, model, posters, cache)
            calibrated = np.arange(len(x)) % 3 == 0
            target = Path(tmp) / f"{model}-int8.onnx"
            excluded = quantize(args.onnx / f"{model}.onnx", target, x[calibrated], args.exclude)
            fp32 = bm.ort_session(args.onnx / f"{model}.onnx", args.threads)
            int8 = bm.ort_session(target, args.threads)
            a, b = embed(fp32, x), embed(int8, x)
            names = [p.name for p in posters]
            res = {"model": model, "excluded_nodes": excluded, "calibration_images": int(calibrated.sum()),
                   **pf.fidelity(dict(zip(names, a)), dict(zip(names, b)), pf.METRIC[model], 10)}
            held = ~calibrated
            cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            res["min_cosine_not_calibrated"] = float(cosines[held].min())
            res["ort_ms_per_image"] = speed({"fp32": fp32, "int8": int8}, np.ascontiguousarray(x[:8]))
            results.append(res)
    if args.json:
        print(json.dumps({"results": results}, indent=2))
        return 0
    print(f"int8 (ORT static QDQ, per-channel s8 weights, u8 activations, min/max on every third poster) against "
          f"float32, {len(posters)} generated posters; issue 17's bounds: min cosine >= 0.999, mean top-10 overlap "
          f">= 0.95" + (f"; kept in float32: nodes matching {args.exclude!r}" if args.exclude else ""))
    print(f"{'model':<9} {'min cosine':>11} {'(not calib.)':>13} {'top-10 mean':>12} {'min':>5} "
          f"{'ORT fp32 ms':>12} {'ORT int8 ms':>12} {'int8/fp32':>10}")
    for r in results:
        s = r["ort_ms_per_image"]
        print(f"{r['model']:<9} {r['min_cosine']:>11.6f} {r['min_cosine_not_calibrated']:>13.6f} "
              f"{r['mean_overlap']:>12.3f} {r['min_overlap']:>5.2f} {s['fp32']:>12.1f} {s['int8']:>12.1f} "
              f"{s['int8'] / s['fp32']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
