#!/usr/bin/env python3
"""`make bench-pinecone`: PosterSim's Pinecone API under load, next to faiss-cpu brute force on the same vectors.

For each size (default 100k; `--sizes 100000,1000000`) it starts a release `postersim serve` on a fresh SQLite store,
creates a 512-d cosine index, upserts N seeded random vectors with metadata through the REST API (as the SDK sends
them: JSON batches under Pinecone's 2 MB limit, several connections at once), then times queries (top_k 10) one at a
time: unfiltered, with a filter passing 50% of records and one passing 1%. faiss-cpu's IndexFlatIP on the same
normalised vectors answers the same queries in the same run (filters as an id selector), and every PosterSim answer is
checked against faiss's exact one (recall@10). Peak memory: the server's VmHWM, and this process's for faiss.
Results print as a Markdown table.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import orjson

DIM = 512
BATCH = 300  # 300 512-d vectors with metadata: about 1.7 MB of JSON, under Pinecone's 2 MB per request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            r = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closes connections idle for --idle-timeout (60 s), as during a long upsert phase.
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.conn.host, self.conn.port, timeout=600)
            self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            r = self.conn.getresponse()
        text = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(xs, p):
    return float(np.percentile(np.asarray(xs), p))


def run_size(args, n, rng):
    tmp = tempfile.mkdtemp(prefix="bench-pinecone-")
    db = os.path.join(tmp, "store.sqlite")
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "w")
    server = subprocess.Popen([args.postersim, "serve", "--db", db, "--models", "none", "--port", str(port), "--log-level", "warning"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                Client(port).call("GET", "/healthz")
                break
            except Exception:
                time.sleep(0.2)
        c = Client(port)
        c.call("POST", "/pinecone/indexes", {"name": "bench", "dimension": DIM, "metric": "cosine",
                                            "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}})
        vecs = rng.standard_normal((n, DIM), dtype=np.float32)
        # bucket: 0..99, so `bucket < 50` passes 50% and `bucket == 7` passes 1%.
        buckets = rng.integers(0, 100, size=n)
        ids = [f"v{i:07d}" for i in range(n)]

        # Sent as float32 (orjson writes each value's shortest float32 form, as compact as the SDK's JSON), so the
        # server stores exactly `vecs`.
        encode_seconds = []

        def send(starts):
            cl = Client(port)
            spent = 0.0
            for start in starts:
                t = time.perf_counter()
                end = min(n, start + BATCH)
                b = orjson.dumps({"vectors": [{"id": ids[i], "values": vecs[i], "metadata": {"bucket": int(buckets[i])}}
                                              for i in range(start, end)]}, option=orjson.OPT_SERIALIZE_NUMPY)
                spent += time.perf_counter() - t
                cl.conn.request("POST", "/pinecone/index/bench/vectors/upsert", body=b, headers={"Content-Type": "application/json"})
                r = cl.conn.getresponse()
                text = r.read()
                if r.status != 200:
                    raise RuntimeError(f"upsert: {r.status} {text[:200]!r}")
            encode_seconds.append(spent)

        workers = 4
        starts = list(range(0, n, BATCH))
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            list(ex.map(send, [starts[i::workers] for i in range(workers)]))
        upsert_s = time.perf_counter() - t0
        encode_s = sum(encode_seconds)
        print(f"({n:,}: upserts took {upsert_s:.1f} s)", flush=True)
        stats = c.call("POST", "/pinecone/index/bench/describe_index_stats", {})
        assert stats["totalVectorCount"] == n, stats

        # The first query loads the namespace into memory.
        q0 = rng.standard_normal(DIM, dtype=np.float32)
        t0 = time.perf_counter()
        c.call("POST", "/pinecone/index/bench/query", {"vector": q0.tolist(), "topK": 10})
        first_query_s = time.perf_counter() - t0

        import faiss
        norm = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        fi = faiss.IndexFlatIP(DIM)
        fi.add(norm)
        faiss.omp_set_num_threads(os.cpu_count())

        rows = []
        filters = [("none", None, None), ("50%", {"bucket": {"$lt": 50}}, buckets < 50), ("1%", {"bucket": 7}, buckets == 7)]
        for label, flt, mask in filters:
            ours, recall = [], []
            by_threads = {}
            sel = None
            if mask is not None:
                sel = faiss.IDSelectorBatch(np.nonzero(mask)[0].astype(np.int64))
            for _ in range(args.queries):
                q = rng.standard_normal(DIM, dtype=np.float32)
                req = {"vector": q.tolist(), "topK": 10}
                if flt is not None:
                    req["filter"] = flt
                t0 = time.perf_counter()
                res = c.call("POST", "/pinecone/index/bench/query", req)
                ours.append(time.perf_counter() - t0)
                qn = (q / np.linalg.norm(q)).reshape(1, -1)
                # faiss with one and with all OpenMP threads, each timed once per query (one query at a time,
                # OpenMP's hand-offs can cost more than they save); the thread count with the lower median is
                # faiss's figure for the row.
                for threads in (1, os.cpu_count()):
                    faiss.omp_set_num_threads(threads)
                    t0 = time.perf_counter()
                    if sel is None:
                        _, I = fi.search(qn, 10)
                    else:
                        _, I = fi.search(qn, 10, params=faiss.SearchParameters(sel=sel))
                    by_threads.setdefault(threads, []).append(time.perf_counter() - t0)
                want = {ids[i] for i in I[0] if i >= 0}
                got = {m["id"] for m in res["matches"]}
                recall.append(len(want & got) / max(1, len(want)))
            theirs = min(by_threads.values(), key=lambda t: float(np.median(t)))
            rows.append((label, ours, theirs, float(np.mean(recall))))
        server_peak = peak_rss_mb(server.pid)
        return {"n": n, "encode_s": encode_s, "upsert_s": upsert_s, "first_query_s": first_query_s, "rows": rows,
                "server_peak_mb": server_peak, "bench_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        server.terminate()
        server.wait(timeout=60)
        subprocess.call(["rm", "-rf", tmp])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--postersim", default=".build/release/postersim")
    p.add_argument("--sizes", default="100000")
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args()
    rng = np.random.default_rng(42)
    print(f"# make bench-pinecone ({os.cpu_count()} cores, {DIM}-d cosine, top_k 10, queries one at a time over HTTP)\n")
    for n in [int(s) for s in args.sizes.split(",")]:
        r = run_size(args, n, rng)
        print(f"## {n:,} records\n")
        print(f"- upsert: {n / r['upsert_s']:,.0f} vectors/s over HTTP, whole command ({r['upsert_s']:.1f} s, 4 connections, "
              f"{BATCH} vectors per request; of it, the client's JSON encoding: {r['encode_s']:.1f} s of thread time)")
        print(f"- first query after the upserts (loads the namespace into memory): {r['first_query_s'] * 1000:.0f} ms")
        print(f"- peak memory: server {r['server_peak_mb']:,.0f} MB, bench process with faiss {r['bench_peak_mb']:,.0f} MB\n")
        print("| filter | PosterSim p50 ms | p99 ms | faiss-cpu flat p50 ms | p99 ms | recall@10 vs faiss |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, ours, theirs, recall in r["rows"]:
            print(f"| {label} | {percentile(ours, 50) * 1000:.2f} | {percentile(ours, 99) * 1000:.2f} | "
                  f"{percentile(theirs, 50) * 1000:.2f} | {percentile(theirs, 99) * 1000:.2f} | {recall:.3f} |")
        print(flush=True)


if __name__ == "__main__":
    main()
