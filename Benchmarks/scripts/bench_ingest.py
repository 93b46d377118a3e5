#!/usr/bin/env python3
"""`make bench-ingest`: end-to-end ingest throughput next to the engine's own model time, same machine, same run.

    python Benchmarks/scripts/bench_ingest.py --cache ~/.cache/postersim/full-size --postersim .build/release/postersim \\
        [--movies 96] [--models clip,resnet50,vgg16] [--batch-size 8] [--titles ../shared/data/tmdb_popular_titles.json]

Issue 4 asks that the pipeline (read poster -> decode -> three preprocessings -> batched embedding -> one store
transaction per batch) add under 10% on top of pure model time. This script measures both sides in one run:

  1. generates `--movies` JPEG posters (500x750, deterministic shapes and noise: real decode work, no fetched
     files) and a TMDB-shaped JSON of movies (titles from `--titles` when given, else generated);
  2. `postersim-bench embed --batches B --json`: the forward pass alone, ms per image per model (the sum is the
     model time one movie needs);
  3. `postersim ingest json FILE --posters DIR --json` into a fresh SQLite store; the pipeline's time is the
     summary's elapsed seconds (from listing the movies to the last transaction; model loading comes before it and
     is reported apart, as the process's wall time minus that);
  4. prints movies/s, ms per movie, the model-only ms per movie and the overhead, and each process's peak RSS.

Models resolve through `--cache` (HF_HUB_CACHE, offline), the same full-size random-weight checkpoints as
`make bench-embed`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_posters(directory: Path, count: int, titles: list[str]) -> Path:
    from PIL import Image, ImageDraw  # the reference environment has Pillow

    rng = random.Random(20241126)
    movies = []
    for index in range(count):
        image = Image.new("RGB", (500, 750), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(24):
            x0, y0 = rng.randrange(500), rng.randrange(750)
            box = [x0, y0, x0 + rng.randrange(20, 300), y0 + rng.randrange(20, 400)]
            fill = tuple(rng.randrange(256) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
        # Film-grain noise so JPEG decoding does the work a real poster needs.
        noise = Image.effect_noise((500, 750), 24).convert("RGB")
        image = Image.blend(image, noise, 0.15)
        name = f"/bench{index:05d}.jpg"
        image.save(directory / name.lstrip("/"), quality=90)
        movies.append({
            "id": 900000 + index, "title": titles[index % len(titles)] if titles else f"Bench movie {index}",
            "overview": "Generated for the ingest benchmark.", "poster_path": name, "release_date": "2024-08-01",
            "genre_ids": [18], "original_language": "en", "original_title": f"Bench movie {index}",
            "popularity": 100.0 - index * 0.01, "vote_average": 7.0, "vote_count": 1000, "adult": False,
            "video": False, "backdrop_path": None,
        })
    path = directory / "movies.json"
    path.write_text(json.dumps(movies))
    return path


def run(cmd: list[str], env: dict) -> tuple[float, str, int]:
    """Runs `cmd`; returns its wall time, its stdout and its own peak resident set in bytes."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"bench-ingest: {' '.join(cmd)} failed ({child.returncode}):\n{err.read()[-2000:]}")
        return elapsed, out.read(), usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", required=True, help="Hugging Face cache with the full-size models")
    ap.add_argument("--postersim", default=".build/release/postersim")
    ap.add_argument("--bench", default=".build/release/postersim-bench", help="the benchmarks' binary (embed)")
    # 96 movies: 12 batches of 8, so the first batch's one-off costs (primitive creation, arena growth, the mapped
    # VGG head paging in) weigh little, as in a real ingest of thousands.
    ap.add_argument("--movies", type=int, default=96)
    ap.add_argument("--models", default="clip,resnet50,vgg16")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--titles", help="tmdb_popular_titles.json ({label, id} objects) for realistic titles")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    if args.movies < args.batch_size:
        ap.error("--movies must be at least --batch-size")

    titles: list[str] = []
    if args.titles and Path(args.titles).exists():
        titles = [entry["label"].rsplit(" - ", 1)[0] for entry in json.loads(Path(args.titles).read_text())]
    env = dict(os.environ, HF_HUB_CACHE=str(Path(args.cache).expanduser()), HF_HUB_OFFLINE="1")
    binary = str(Path(args.postersim).resolve())

    with tempfile.TemporaryDirectory(prefix="postersim-bench-ingest-") as tmp:
        work = Path(tmp)
        posters = work / "posters"
        posters.mkdir()
        movies = make_posters(posters, args.movies, titles)

        # The forward pass alone at the ingest's batch size, and decoding + preprocessing alone (one thread).
        sample = sorted(str(p) for p in posters.glob("*.jpg"))[:16]
        _, out, engine_rss = run([args.bench, "embed", "--json", "--models", args.models, "--batches",
                                  str(args.batch_size), "--warmup", "1", "--min-runs", "3", "--min-seconds", "3",
                                  "--decode"] + sample, env)
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        model_ms = {row["model"]: row["ms_per_image"] for row in rows if "model" in row}
        preparation_ms = {row["step"]: row["ms_per_image"] for row in rows if "step" in row}

        common = ["--posters", str(posters), "--models", args.models, "--batch-size", str(args.batch_size),
                  "--poster-cache", str(work / "cache"), "--json"]
        total_s, out, ingest_rss = run([binary, "ingest", "json", str(movies), "--db", str(work / "store.sqlite")]
                                       + common, env)
        summary = json.loads(out[out.index("{"):])
        pipeline_s = summary.get("elapsedSeconds", summary.get("elapsed_seconds"))
        if pipeline_s is None or summary.get("embedded") != args.movies:
            sys.exit(f"bench-ingest: unexpected summary (every movie should be embedded): {summary}")
        load_s = total_s - pipeline_s

    per_movie_ms = pipeline_s * 1000 / args.movies
    model_sum = sum(model_ms.values())
    result = {
        "movies": args.movies, "models": model_ms, "batch_size": args.batch_size,
        "process_seconds": total_s, "pipeline_seconds": pipeline_s, "load_seconds": load_s, "movies_per_second": 1000 / per_movie_ms,
        "ms_per_movie": per_movie_ms, "model_ms_per_movie": model_sum, "preparation_ms": preparation_ms, "overhead": per_movie_ms / model_sum - 1,
        "engine_peak_rss_bytes": engine_rss, "ingest_peak_rss_bytes": ingest_rss, "summary": summary, "loadavg": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"bench-ingest: {args.movies} generated 500x750 JPEG posters from disk, models {args.models}, "
          f"batch {args.batch_size}, load average {os.getloadavg()[0]:.2f}")
    print(f"  forward pass alone (postersim-bench embed): " + " + ".join(f"{m} {v:.1f}" for m, v in model_ms.items())
          + f" = {model_sum:.1f} ms per movie")
    print(f"  decoding + preprocessing alone, one thread: " + " + ".join(f"{k} {v:.1f}" for k, v in preparation_ms.items())
          + f" = {sum(preparation_ms.values()):.1f} ms per movie ({sum(preparation_ms.values()) / model_sum * 100:.1f}% "
          "of the model time; the pipeline runs it between batches, on every core)")
    print(f"  ingest: {pipeline_s:.1f} s from listing to the last transaction ({total_s:.1f} s for the process, "
          f"{load_s:.1f} s of it start-up and model loading)")
    print(f"  end to end: {result['movies_per_second']:.2f} movies/s = {per_movie_ms:.1f} ms per movie")
    print(f"  pipeline overhead on top of the models: {result['overhead'] * 100:+.1f}% (target: under +10%)")
    print(f"  peak resident memory: ingest {ingest_rss / 2**20:.0f} MiB, postersim-bench embed {engine_rss / 2**20:.0f} MiB")
    print(f"  summary: {json.dumps(summary)}")


if __name__ == "__main__":
    main()
