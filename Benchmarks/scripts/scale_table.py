#!/usr/bin/env python3
"""The table of `make bench-scale`: one row per size from the JSON objects of `postersim-bench scale`."""
import json
import sys


def mib(n):
    return f"{n / (1 << 20):.0f} MiB"


def main():
    rows = []
    for path in sys.argv[1:]:
        with open(path) as f:
            rows.append(json.load(f))
    rows.sort(key=lambda r: r["movies"])
    # serve RSS and start-up: with the index file mapped (the usual start), then decoding every row (no index file).
    print("| films | build | lists ms/film | disk (+ index file) | serve RSS (rows) | start-up (rows) | by id p50/p99 | exact top-10 | "
          "by vector p50/p99 | filtered p99 (1% / 50%) | faiss flat p50 (clip/resnet50/vgg16) | faiss HNSW p50, recall |")
    print("|" + " --- |" * 12)
    for r in rows:
        fa = r.get("faiss", {})
        flat = "/".join(f"{fa[s]['flat']['p50_ms']:.2f}" for s in ("clip", "resnet50", "vgg16") if s in fa)
        hnsw = "/".join(f"{fa[s]['hnsw']['p50_ms']:.2f} ({fa[s]['hnsw']['recall_at_10']:.3f})"
                        for s in ("clip", "resnet50", "vgg16") if s in fa)
        by = r.get("filtered_p99_ms_by_selectivity", {})
        print(f"| {r['movies']:,} | {r['build_s']:.0f} s | {r['lists_ms_per_insert']:.2f} | {mib(r['disk_bytes'])} "
              f"(+ {mib(r.get('index_bytes', 0))}) | {mib(r['serve_rss_bytes'])} ({mib(r.get('serve_rows_rss_bytes', 0))}) | "
              f"{r['startup_s']:.2f} s ({r.get('startup_rows_s', 0):.2f} s) | {r['by_id_p50_ms']:.3f} / {r['by_id_p99_ms']:.3f} ms | "
              f"{r['by_id_exact_match']:.3f} | {r['by_vector_p50_ms']:.1f} / {r['by_vector_p99_ms']:.1f} ms | "
              f"{by.get('1%', 0):.1f} / {by.get('50%', 0):.1f} ms | {flat} ms | {hnsw} |")


if __name__ == "__main__":
    main()
