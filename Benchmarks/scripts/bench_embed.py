#!/usr/bin/env python3
"""`make bench-embed`: ms per image of PosterSim's engine, PyTorch and ONNX Runtime on the same machine.

    python Benchmarks/scripts/bench_embed.py --cache .cache/full-size --onnx .cache/onnx \\
        [--threads 2] [--batches 1,8] [--models clip,resnet50,vgg16] [--runtimes pytorch,ort] \\
        [--swift-cmd ".build/release/postersim bench-embed --json"] [--precisions fp32,bf16,int8] \\
        [--min-runs 10] [--min-seconds 5] [--warmup 2] [--rounds 1] [--json]

Each runtime runs in a process of its own (one process per runtime and round), which loads all the chosen models
first (that is the "all models loaded" memory figure), then times every (model, batch) pair: `--warmup` batches,
then batches until at least `--min-runs` batches AND `--min-seconds` seconds have passed; the result is the median
batch time divided by the batch size. The input is the golden images' preprocessed tensors (cycled to fill the
batch); only the model forward is timed (no decoding, no preprocessing).

  pytorch  torch.set_num_threads(T), set_num_interop_threads(1), eval(), torch.inference_mode()
  ort      onnxruntime CPUExecutionProvider, intra_op_num_threads=T, inter_op_num_threads=1, sequential,
           ORT_ENABLE_ALL graph optimisations, on OUT/<model>.onnx from export_onnx.py
  ours     the `--swift-cmd` command (see "Contract" below), once per `--precisions` entry with `--precision P`
           appended (ours-fp32, ours-bf16, ours-int8); a precision the CPU cannot run shows as FAILED with the
           command's error; ours-int8 runs only the models that compute in int8 (VGG16), so its memory figure is
           VGG16's alone

With `--rounds R > 1` the runtimes run R times in turn (pytorch, ort, ours-fp32, ours-bf16, pytorch, ...) and each
figure is the median over the rounds of each round's median (`--merge best` takes the best round instead): on a
shared machine alternating keeps a burst of load from landing on one runtime only.

Contract for `--swift-cmd` (the same one the Python workers of this script follow):
  The command is split with shlex and run with these options appended:
      --models clip,resnet50,vgg16 --batches 1,8 --threads 2 --warmup 2 --min-runs 10 --min-seconds 5
  and with HF_HUB_CACHE=<--cache>, HF_HUB_OFFLINE=1 in its environment (the models resolve through that cache).
  It prints to stdout one JSON object per line (lines not starting with "{" are ignored):
      {"model": "clip", "batch": 8, "ms_per_image": 21.7, "runs": 12}       one per (model, batch), required
      {"memory": {"loaded_rss_bytes": ..., "peak_rss_bytes": ...}}         optional, once
  `ms_per_image` is the median batch wall time / batch in milliseconds, `runs` the number of timed batches;
  `loaded_rss_bytes` is the resident set after all models are loaded, `peak_rss_bytes` the process's peak resident
  set (VmHWM) when it exits. Exit status 0 on success.

Only ratios measured in one run compare: the table gives ours/ORT, ours/PyTorch and PyTorch/ORT.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models as bm  # noqa: E402

REFERENCE_RUNTIMES = ("pytorch", "ort")


# ---------------------------------------------------------------------------------------------------------------------
# Worker side: runs inside the per-runtime process, prints the contract's JSON lines.
# ---------------------------------------------------------------------------------------------------------------------

def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def time_batches(run, warmup: int, min_runs: int, min_seconds: float) -> tuple[float, float, int, float]:
    """Call `run()` `warmup` times, then until both floors are met; (median s, min s, timed runs, mean CPU s of
    this process per run). The CPU time (user + system, all threads, spin-waiting included) shows how much of a
    wall time a busy machine took away."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    cpu0 = os.times()
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return statistics.median(times), min(times), len(times), cpu / len(times)


def batch_of(x, batch: int):
    import numpy as np
    idx = np.arange(batch) % len(x)
    return np.ascontiguousarray(x[idx])


def worker(args) -> int:
    runtime = args.worker
    cache = args.cache.resolve()
    bm.use_cache(cache)
    models = bm.parse_models(args.models)
    batches = parse_batches(args.batches)
    inputs = {n: bm.sample_inputs(cache, n)[0] for n in models}

    if runtime == "pytorch":
        import torch
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
        import timm  # noqa: F401  (imported before the baseline so it counts libraries, not models)
        from transformers import CLIPModel, ResNetModel  # noqa: F401
        baseline = bm.current_rss_bytes()
        loaded = {n: bm.load_torch(n, cache) for n in models}
        import gc
        gc.collect()

        def runner(name, x):
            t = torch.from_numpy(x)
            model = loaded[name]

            def run():
                with torch.inference_mode():
                    return model(t)
            return run
        version = f"torch {torch.__version__}"
    elif runtime == "ort":
        import onnxruntime as ort
        baseline = bm.current_rss_bytes()
        loaded = {}
        for n in models:
            path = args.onnx / f"{n}.onnx"
            if not path.is_file():
                raise SystemExit(f"{path} is missing; run Benchmarks/scripts/export_onnx.py --cache {cache} --out {args.onnx}")
            loaded[n] = bm.ort_session(path, args.threads)

        def runner(name, x):
            sess = loaded[name]
            feed = {"pixel_values": x}
            return lambda: sess.run(["embedding"], feed)
        version = f"onnxruntime {ort.__version__}"
    else:
        raise SystemExit(f"unknown worker runtime {runtime!r}")

    emit({"memory": {"baseline_rss_bytes": baseline, "loaded_rss_bytes": bm.current_rss_bytes(),
                     "loaded_peak_rss_bytes": bm.peak_rss_bytes()}, "version": version})
    for name in models:
        for batch in batches:
            x = batch_of(inputs[name], batch)
            med, best, runs, cpu = time_batches(runner(name, x), args.warmup, args.min_runs, args.min_seconds)
            emit({"model": name, "batch": batch, "ms_per_image": med * 1e3 / batch,
                  "ms_per_image_min": best * 1e3 / batch, "cpu_ms_per_image": cpu * 1e3 / batch, "runs": runs})
    emit({"memory": {"peak_rss_bytes": bm.peak_rss_bytes()}})
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# Harness side
# ---------------------------------------------------------------------------------------------------------------------

def parse_batches(text: str) -> list[int]:
    try:
        out = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--batches: expected comma-separated integers, got {text!r}")
    if not out or any(b < 1 for b in out):
        raise SystemExit(f"--batches: expected positive integers, got {text!r}")
    return out


# The models each of our precisions computes (Precision.supportedModels): int8 is VGG16's alone, and the bench loads
# every listed model, so ours-int8 runs with the others left out.
PRECISION_MODELS = {"fp32": None, "bf16": None, "int8": {"vgg16"}}


def models_for(runtime: str, args) -> str:
    allowed = PRECISION_MODELS.get(runtime[len("ours-"):]) if runtime.startswith("ours-") else None
    if allowed is None:
        return args.models
    return ",".join(m for m in bm.parse_models(args.models) if m in allowed)


def common_options(args, models: str | None = None) -> list[str]:
    return ["--models", models or args.models, "--batches", args.batches, "--threads", str(args.threads),
            "--warmup", str(args.warmup), "--min-runs", str(args.min_runs), "--min-seconds", str(args.min_seconds)]


def command_for(runtime: str, args) -> list[str]:
    if runtime.startswith("ours-"):
        return (shlex.split(args.swift_cmd) + ["--precision", runtime[len("ours-"):]]
                + common_options(args, models_for(runtime, args)))
    return [sys.executable, str(Path(__file__).resolve()), "--worker", runtime, "--cache", str(args.cache),
            "--onnx", str(args.onnx)] + common_options(args)


class RuntimeFailed(Exception):
    pass


def run_runtime(runtime: str, args) -> dict:
    """Run one runtime process; returns {"timings": {(model, batch): row}, "memory": {...}, "version": str}."""
    cmd = command_for(runtime, args)
    env = dict(os.environ, HF_HUB_CACHE=str(args.cache.resolve()), HF_HUB_OFFLINE="1")
    if not args.json:
        print(f"[{runtime}] {shlex.join(cmd)}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=None if args.verbose else subprocess.PIPE,
                              text=True)
    except OSError as e:
        raise RuntimeFailed(f"{runtime}: cannot run {cmd[0]}: {e}")
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-15:]
        raise RuntimeFailed(f"{runtime}: exit status {proc.returncode}\n  " + "\n  ".join(tail))
    result = {"timings": {}, "memory": {}, "version": None, "wall_s": time.perf_counter() - t0,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise RuntimeFailed(f"{runtime}: bad JSON line {line[:200]!r}: {e}")
        if "memory" in obj:
            if not isinstance(obj["memory"], dict):
                raise RuntimeFailed(f"{runtime}: \"memory\" must be an object: {line[:200]}")
            result["memory"].update(obj["memory"])
            result["version"] = obj.get("version", result["version"])
            continue
        try:
            key = (str(obj["model"]).lower(), int(obj["batch"]))
            row = {"ms_per_image": float(obj["ms_per_image"]), "runs": int(obj["runs"])}
        except (KeyError, TypeError, ValueError) as e:
            raise RuntimeFailed(f"{runtime}: line lacks model/batch/ms_per_image/runs ({e}): {line[:200]}")
        for extra in ("ms_per_image_min", "cpu_ms_per_image"):  # optional
            if extra in obj:
                row[extra] = float(obj[extra])
        result["timings"][key] = row
    # Only the models this runtime was asked for (ours-int8 runs VGG16 alone).
    want = {(m, b) for m in bm.parse_models(models_for(runtime, args)) for b in parse_batches(args.batches)}
    missing = sorted(want - set(result["timings"]))
    if missing:
        raise RuntimeFailed(f"{runtime}: no timing for {', '.join(f'{m} batch {b}' for m, b in missing)}")
    return result


def merge_rounds(rounds: list[dict], how: str = "median") -> dict:
    """Per (model, batch): the round whose median is the median of the rounds' (`how="median"`; with an even
    count the lower middle one) or the lowest (`how="best"`); memory: the largest figure of any round."""
    out = {"timings": {}, "memory": {}, "version": rounds[0]["version"], "rounds": len(rounds),
           "loadavg": [r["loadavg_before"] for r in rounds] + [rounds[-1]["loadavg_after"]]}
    keys = {key for r in rounds for key in r["timings"]}
    for key in keys:
        rows = sorted((r["timings"][key] for r in rounds if key in r["timings"]), key=lambda row: row["ms_per_image"])
        chosen = rows[0] if how == "best" else rows[(len(rows) - 1) // 2]
        out["timings"][key] = dict(chosen, rounds_ms_per_image=[row["ms_per_image"] for row in rows])
    for r in rounds:
        for k, v in r["memory"].items():
            out["memory"][k] = max(v, out["memory"].get(k, v))
    return out


def mb(n) -> str:
    return "-" if n is None else f"{n / 1e6:.0f} MB"


def ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


def fmt_ms(row) -> str:
    return "-" if row is None else f"{row['ms_per_image']:.1f}"


def machine_info() -> dict:
    cpu = platform.processor() or ""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    try:  # with sched autogroup on, this (per session), not the process nice, ranks us against other sessions
        autogroup = Path("/proc/self/autogroup").read_text().split()[-1]
    except (OSError, IndexError):
        autogroup = None
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return {"cpu": cpu, "isa": isa, "bf16": " avx512_bf16" in flags, "cpus": os.cpu_count(), "nice": os.nice(0), "autogroup_nice": autogroup,
            "python": platform.python_version(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


def print_report(results: dict, args, machine: dict, weights: dict) -> None:
    models = bm.parse_models(args.models)
    batches = parse_batches(args.batches)
    ours = [rt for rt in results if rt.startswith("ours-")]
    print(f"bench-embed: {machine['cpu']} ({machine['isa']}{', bf16' if machine.get('bf16') else ''}, "
          f"{machine['cpus']} CPUs), {args.threads} threads, "
          f"nice {machine['nice']} (autogroup {machine.get('autogroup_nice') or '-'}), warm-up {args.warmup}, median of >= {args.min_runs} batches and >= "
          f"{args.min_seconds:g} s" + (f", {args.merge} of {args.rounds} alternating rounds" if args.rounds > 1 else ""))
    for rt, res in results.items():
        if "error" in res:
            continue
        la = " -> ".join(f"{x[0]:.1f}" for x in res["loadavg"])
        print(f"  {rt}: {res['version'] or '?'}; 1-min load average {la}")
    names = [rt[len("ours-"):] for rt in ours]
    head = (f"{'model':<9} {'batch':>5} {'PyTorch':>9} {'ORT':>9} " + "".join(f"{n:>9}" for n in names)
            + "".join(f"{n + '/ORT':>10} {n + '/PyT':>10}" for n in names)
            + (f" {'fp32/bf16':>10}" if {"fp32", "bf16"} <= set(names) else "")
            + (f" {'fp32/int8':>10}" if {"fp32", "int8"} <= set(names) else "") + f" {'PyT/ORT':>8}")
    print("\nms per image (median); ours at each precision, ratios < 1 mean ours is faster; fp32/bf16 and fp32/int8 "
          "are the speed-ups (int8: VGG16 only)")
    print(head)
    print("-" * len(head))
    for m in models:
        for b in batches:
            row = {rt: results.get(rt, {}).get("timings", {}).get((m, b)) for rt in ("pytorch", "ort", *ours)}
            v = {rt: (r["ms_per_image"] if r else None) for rt, r in row.items()}
            line = f"{m:<9} {b:>5} {fmt_ms(row['pytorch']):>9} {fmt_ms(row['ort']):>9} "
            line += "".join(f"{fmt_ms(row[rt]):>9}" for rt in ours)
            line += "".join(f"{ratio(v[rt], v['ort']):>10} {ratio(v[rt], v['pytorch']):>10}" for rt in ours)
            if {"fp32", "bf16"} <= set(names):
                line += f" {ratio(v['ours-fp32'], v['ours-bf16']):>10}"
            if {"fp32", "int8"} <= set(names):
                line += f" {ratio(v['ours-fp32'], v['ours-int8']):>10}"
            print(line + f" {ratio(v['pytorch'], v['ort']):>8}")
    total_w = sum(weights.values())
    print(f"\nresident memory, all of {', '.join(models)} loaded; weights in the cache: {mb(total_w)} "
          f"({', '.join(f'{m} {mb(w)}' for m, w in weights.items())})")
    head = f"{'runtime':<9} {'baseline':>10} {'loaded':>10} {'peak@load':>10} {'peak':>10} {'peak/weights':>13} {'(peak-base)/weights':>20}"
    print(head)
    print("-" * len(head))
    for rt in ("pytorch", "ort", *ours):
        res = results.get(rt)
        if res is None:
            continue
        if "error" in res:
            print(f"{rt:<9} FAILED")
            continue
        mem = res["memory"]
        base, peak = mem.get("baseline_rss_bytes"), mem.get("peak_rss_bytes")
        print(f"{rt:<9} {mb(base):>10} {mb(mem.get('loaded_rss_bytes')):>10} "
              f"{mb(mem.get('loaded_peak_rss_bytes')):>10} {mb(peak):>10} {ratio(peak, total_w):>13} "
              f"{ratio(None if base is None or peak is None else peak - base, total_w):>20}")
    print("baseline = resident set before loading any model (interpreter and libraries); peak = VmHWM at exit.")
    for rt, res in results.items():
        if "error" in res:
            print(f"\n{rt} FAILED: {res['error']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="Hugging Face cache with the full-size models")
    ap.add_argument("--onnx", type=Path, required=True, help="directory of <model>.onnx (export_onnx.py --out)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--models", default=",".join(bm.MODEL_NAMES))
    ap.add_argument("--runtimes", default="pytorch,ort", help="of pytorch,ort; `ours` is added by --swift-cmd")
    ap.add_argument("--swift-cmd", help="PosterSim's bench command, e.g. \".build/release/postersim bench-embed --json\"")
    ap.add_argument("--precisions", default="fp32,bf16,int8", help="the --precision values to run the --swift-cmd at")
    ap.add_argument("--merge", choices=("median", "best"), default="median", help="how rounds combine")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-runs", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    ap.add_argument("--verbose", action="store_true", help="pass the runtimes' stderr through")
    ap.add_argument("--worker", choices=("pytorch", "ort"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads < 1 or args.warmup < 0 or args.min_runs < 1 or args.min_seconds < 0 or args.rounds < 1:
        ap.error("--threads, --min-runs and --rounds must be >= 1, --warmup and --min-seconds >= 0")
    parse_batches(args.batches)
    bm.parse_models(args.models)
    if args.worker:
        return worker(args)

    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    for r in runtimes:
        if r not in REFERENCE_RUNTIMES:
            ap.error(f"--runtimes: unknown runtime {r!r} (pytorch, ort; ours comes from --swift-cmd)")
    if args.swift_cmd:
        for p in (p.strip() for p in args.precisions.split(",")):
            if p not in PRECISION_MODELS:
                ap.error(f"--precisions: unknown precision {p!r} ({', '.join(PRECISION_MODELS)})")
            if not models_for(f"ours-{p}", args):
                continue  # none of the listed models computes at this precision
            runtimes.append(f"ours-{p}")
    if not runtimes:
        ap.error("nothing to run")
    cache = args.cache.resolve()
    weights = {m: bm.weights_bytes(cache, m) for m in bm.parse_models(args.models)}
    machine = machine_info()

    per_round: dict[str, list[dict]] = {r: [] for r in runtimes}
    errors: dict[str, str] = {}
    for _ in range(args.rounds):
        for rt in runtimes:
            if rt in errors:
                continue
            try:
                per_round[rt].append(run_runtime(rt, args))
            except RuntimeFailed as e:
                errors[rt] = str(e)
    results = {rt: ({"error": errors[rt]} if rt in errors else merge_rounds(per_round[rt], args.merge))
               for rt in runtimes}

    if args.json:
        def row(rt, m, b):
            return results[rt].get("timings", {}).get((m, b))
        doc = {"machine": machine, "threads": args.threads, "warmup": args.warmup, "min_runs": args.min_runs,
               "min_seconds": args.min_seconds, "rounds": args.rounds, "weights_bytes": weights,
               "runtimes": {rt: {k: v for k, v in res.items() if k != "timings"} for rt, res in results.items()},
               "results": [{"model": m, "batch": b, **{rt: row(rt, m, b) for rt in runtimes}}
                           for m in bm.parse_models(args.models) for b in parse_batches(args.batches)]}
        print(json.dumps(doc, indent=2))
    else:
        print_report(results, args, machine, weights)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
