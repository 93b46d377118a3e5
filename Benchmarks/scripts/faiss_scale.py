#!/usr/bin/env python3
"""faiss-cpu on the synthetic catalogue of `postersim-bench scale` (make bench-scale), same vectors, same queries.

Flat (exact) and HNSW indexes, one query at a time (nq = 1, as a web request), with one and with two OpenMP threads
(the better of the two is faiss's figure; one is often better for a single query): build time, p50/p99 per query, HNSW's recall@10 against flat, and how often PosterSim's exact top-10 (--ours, row ids) equals faiss flat's.
Cosine spaces are searched as inner product over L2-normalised rows, as faiss documents.
"""
import argparse
import json
import resource
import time

import faiss
import numpy as np


def timed_search(index, xq, k):
    for i in range(min(5, len(xq))):
        index.search(xq[i : i + 1], k)
    times, ids = [], []
    for i in range(len(xq)):
        t0 = time.perf_counter_ns()
        _, idx = index.search(xq[i : i + 1], k)
        times.append((time.perf_counter_ns() - t0) / 1e6)
        ids.append(idx[0].tolist())
    times.sort()
    n = len(times)
    return {"p50_ms": times[n // 2], "p99_ms": times[min(n - 1, int(np.ceil(0.99 * n)) - 1)]}, ids


def best_of_threads(index, xq, k):
    """Times the search with 1 and 2 OpenMP threads; returns the faster (by p50), with both in 'by_threads'."""
    runs = {}
    for t in (1, 2):
        faiss.omp_set_num_threads(t)
        runs[t] = timed_search(index, xq, k)
    best = min(runs, key=lambda t: runs[t][0]["p50_ms"])
    figures = dict(runs[best][0])
    figures["threads"] = best
    figures["by_threads"] = {str(t): r[0] for t, r in runs.items()}
    faiss.omp_set_num_threads(2)
    return figures, runs[best][1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--metric", choices=["cosine", "euclidean"], required=True)
    ap.add_argument("--ours", help="JSON list of PosterSim's top-10 row ids per query")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--ef-search", type=int, default=128)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    faiss.omp_set_num_threads(2)
    xb = np.ascontiguousarray(np.load(args.base), dtype=np.float32)
    xq = np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
    if args.metric == "cosine":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
        metric = faiss.METRIC_INNER_PRODUCT
    else:
        metric = faiss.METRIC_L2
    d = xb.shape[1]
    out = {"faiss_version": faiss.__version__, "rows": int(xb.shape[0]), "dimension": int(d)}

    flat = faiss.IndexFlat(d, metric)
    t0 = time.perf_counter()
    flat.add(xb)
    out["flat_build_s"] = time.perf_counter() - t0
    out["flat"], flat_ids = best_of_threads(flat, xq, args.k)
    del flat

    if args.ours:
        with open(args.ours) as f:
            ours = json.load(f)
        same = sum(1 for a, b in zip(ours, flat_ids) if set(a) == set(b))
        out["flat_agrees_with_postersim"] = same / max(1, len(ours))
        hits = sum(len(set(a) & set(b)) for a, b in zip(ours, flat_ids))
        out["postersim_recall_at_10"] = hits / max(1, args.k * len(ours))

    hnsw = faiss.IndexHNSWFlat(d, args.hnsw_m, metric)
    hnsw.hnsw.efConstruction = args.ef_construction
    t0 = time.perf_counter()
    hnsw.add(xb)
    out["hnsw_build_s"] = time.perf_counter() - t0
    hnsw.hnsw.efSearch = args.ef_search
    out["hnsw"], hnsw_ids = best_of_threads(hnsw, xq, args.k)
    out["hnsw"]["params"] = {"M": args.hnsw_m, "efConstruction": args.ef_construction, "efSearch": args.ef_search}
    hits = sum(len(set(a) & set(b)) for a, b in zip(hnsw_ids, flat_ids))
    out["hnsw"]["recall_at_10"] = hits / (args.k * len(flat_ids))
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
