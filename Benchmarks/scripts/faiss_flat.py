#!/usr/bin/env python3
"""faiss-cpu exact search timings for `make bench-store`, on the vectors the Swift benchmark wrote.

Times IndexFlatIP and IndexFlatL2, one query at a time (nq = 1, as a web request would), k results, for each OpenMP
thread count given, and writes p50/p99 in milliseconds plus faiss's top-k row ids (for the Swift side to check it
found the same neighbours) as JSON.
"""
import argparse
import json
import time

import faiss
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help=".npy float32 (n, d), rows are the database")
    ap.add_argument("--queries", required=True, help=".npy float32 (nq, d)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    xb = np.load(args.base, mmap_mode="r")
    xq = np.ascontiguousarray(np.load(args.queries), dtype=np.float32)
    d = xb.shape[1]
    result = {"faiss_version": faiss.__version__, "simd": faiss.get_compile_options()}
    for name, cls in (("ip", faiss.IndexFlatIP), ("l2", faiss.IndexFlatL2)):
        index = cls(d)
        index.add(np.ascontiguousarray(xb, dtype=np.float32))
        per_threads = {}
        ids = None
        for t in [int(x) for x in args.threads.split(",")]:
            faiss.omp_set_num_threads(t)
            for i in range(min(args.warmup, len(xq))):
                index.search(xq[i : i + 1], args.k)
            times = []
            found = []
            for i in range(len(xq)):
                q = xq[i : i + 1]
                t0 = time.perf_counter_ns()
                _, idx = index.search(q, args.k)
                times.append((time.perf_counter_ns() - t0) / 1e6)
                found.append(idx[0].tolist())
            times.sort()
            n = len(times)
            per_threads[str(t)] = {"p50": times[n // 2], "p99": times[min(n - 1, int(np.ceil(0.99 * n)) - 1)]}
            ids = ids or found
        result[name] = per_threads
        result[name + "_ids"] = ids
        del index
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
