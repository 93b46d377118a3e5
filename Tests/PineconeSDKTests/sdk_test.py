#!/usr/bin/env python3
"""Pinecone's official Python SDK, both generations, against a real `postersim serve`.

Run as `sdk_test.py --postersim .build/debug/postersim`: it makes one venv per SDK version under
.build/pinecone-sdk (pinecone==5.4.2 and pinecone==10.2.0 from PyPI, plus numpy; kept between runs), fills a
temporary SQLite store with a few movies and their CLIP vectors, starts `postersim serve` on it with an API key, and
runs this same file inside each venv (`client` mode). The client drives every call of the issue through the SDK and
checks every answer against a NumPy brute force written here, independently of the server: scores (cosine
similarity, squared euclidean distance, dot product), order (ties by id), filters, namespaces, pagination. Then the
bad-input cases: wrong dimension, bad filters, oversize requests, missing and wrong keys, unknown indexes, duplicate
creates, writes to the model indexes.
"""
import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SDK_VERSIONS = ["5.4.2", "10.2.0"]
KEY = "test-key-" + "".join(random.choice("abcdef0123456789") for _ in range(24))


# ---------------------------------------------------------------------------------------------------------------------
# Orchestrator (system python)


def ensure_venv(root, version):
    venv = os.path.join(root, f"venv-{version}")
    stamp = os.path.join(venv, ".installed")
    if not os.path.exists(stamp):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([os.path.join(venv, "bin", "pip"), "install", "-q", f"pinecone=={version}", "numpy"])
        open(stamp, "w").write(version)
    return os.path.join(venv, "bin", "python")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MOVIES = 40
CLIP_DIM = 512


def movie_vector(i):
    rng = random.Random(1000 + i)
    return [rng.uniform(-1, 1) for _ in range(CLIP_DIM)]


def seed_movie_store(postersim, db):
    """A store with movies and CLIP vectors, written with sqlite3 after `postersim stats` created the schema."""
    subprocess.check_call([postersim, "stats", "--db", db], stdout=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    identity = "openai/clip-vit-base-patch32@sha256:" + "a" * 64
    con.execute("INSERT INTO vector_space (name, dimension, metric, identity) VALUES ('clip', 512, 'cosine', ?)", (identity,))
    for i in range(1, MOVIES + 1):
        con.execute(
            "INSERT INTO movie (id, title, original_title, overview, release_date, poster_path, genre_ids, "
            "original_language, popularity, vote_average, vote_count, adult, video, popularity_rank) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
            (i * 7, f"Movie {i}", f"Original {i}", f"About {i}", f"{1990 + i % 30}-01-0{1 + i % 9}", f"/p{i}.jpg",
             json.dumps([18, 28] if i % 2 else [35]), "en" if i % 3 else "fr", i / 3, 5 + i % 5, 100 * i, i))
        blob = struct.pack(f"<{CLIP_DIM}f", *movie_vector(i))
        con.execute("INSERT INTO embedding (space, movie_id, identity, vector) VALUES ('clip', ?, ?, ?)", (i * 7, identity, blob))
    con.execute("UPDATE store_revision SET value = value + 1")
    con.commit()
    con.close()


def start_server(postersim, db, port, extra=(), store=None):
    """`postersim serve` on the SQLite file `db`, or on `store` (a PostgreSQL URL) when given; its log beside `db`."""
    log = open(db + f".{port}.log", "w")
    where = ["--store", store] if store else ["--db", db]
    args = [postersim, "serve", *where, "--models", "none", "--port", str(port), *extra]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "POSTERSIM_API_KEY": ""})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc
        except Exception:
            if proc.poll() is not None:
                raise SystemExit(f"postersim serve exited: {open(db + f'.{port}.log').read()}")
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("postersim serve did not start")


def http(method, url, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None), dict(r.headers)
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            parsed = json.loads(text)
        except Exception:
            parsed = text
        return e.code, parsed, dict(e.headers)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def raw_http_cases(base):
    """What no SDK sends: missing and wrong keys, oversize and malformed bodies, the key never echoed."""
    k = {"Api-Key": KEY}
    st, body, _ = http("GET", base + "/indexes")
    check(st == 401 and "error" in body, f"no key: {st} {body}")
    st, body, _ = http("GET", base + "/indexes", headers={"Api-Key": KEY + "x"})
    check(st == 401 and KEY not in json.dumps(body), f"wrong key: {st} {body}")
    st, body, _ = http("GET", base + "/indexes", headers=k)
    check(st == 200, f"right key: {st}")
    st, body, _ = http("POST", base + "/indexes", body={"name": "raw-one", "dimension": 3, "metric": "dotproduct",
                                                        "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}}, headers=k)
    check(st == 201, f"create: {st} {body}")
    idx = base + "/index/raw-one"
    st, body, _ = http("POST", idx + "/vectors/upsert", raw=b"{not json", headers=k)
    check(st == 400 and "message" in body, f"bad json: {st} {body}")
    big = {"vectors": [{"id": f"v{i}", "values": [0.5, 0.25, 0.125], "metadata": {"pad": "x" * 4000}} for i in range(600)]}
    st, body, _ = http("POST", idx + "/vectors/upsert", body=big, headers=k)
    check(st == 413, f"oversize body: {st}")
    many = {"vectors": [{"id": f"v{i}", "values": [1, 2, 3]} for i in range(1001)]}
    st, body, _ = http("POST", idx + "/vectors/upsert", body=many, headers=k)
    check(st == 400, f"1001 vectors: {st} {body}")
    fat = {"vectors": [{"id": "fat", "values": [1, 2, 3], "metadata": {"pad": "x" * 41000}}]}
    st, body, _ = http("POST", idx + "/vectors/upsert", body=fat, headers=k)
    check(st == 400, f"metadata over 40 KB: {st} {body}")
    longid = {"vectors": [{"id": "x" * 513, "values": [1, 2, 3]}]}
    st, body, _ = http("POST", idx + "/vectors/upsert", body=longid, headers=k)
    check(st == 400, f"id over 512 bytes: {st} {body}")
    # A batch with one bad vector stores none of the others.
    mixed = {"vectors": [{"id": "ok1", "values": [1, 2, 3]}, {"id": "bad", "values": [1, 2]}]}
    st, body, _ = http("POST", idx + "/vectors/upsert", body=mixed, headers=k)
    check(st == 400, f"mixed batch: {st}")
    st, body, _ = http("GET", idx + "/vectors/fetch?ids=ok1", headers=k)
    check(st == 200 and body["vectors"] == {}, f"partial write: {body}")
    st, body, _ = http("POST", idx + "/query", body={"topK": 10001, "vector": [1, 2, 3]}, headers=k)
    check(st == 400, f"topK 10001: {st}")
    st, body, _ = http("POST", idx + "/query", body={"topK": 2, "vector": [1, 2, 3], "filter": {"a": {"$bogus": 1}}}, headers=k)
    check(st == 400, f"unknown operator: {st}")
    st, body, _ = http("POST", idx + "/query", body={"topK": 2, "vector": [1, 2, 3], "filter": {"a": {"$gt": "x"}}}, headers=k)
    check(st == 400, f"$gt on a string: {st}")
    st, body, _ = http("POST", idx + "/vectors/upsert", body={"vectors": [{"id": "n", "values": [1, 2, 3], "metadata": {"o": {"x": 1}}}]}, headers=k)
    check(st == 400, f"nested metadata: {st}")
    st, body, _ = http("POST", base + "/indexes", body={"name": "Bad_Name", "dimension": 3, "metric": "cosine",
                                                        "spec": {"serverless": {"cloud": "aws", "region": "x"}}}, headers=k)
    check(st == 400, f"bad index name: {st}")
    st, body, _ = http("POST", base + "/index/nope/query", body={"topK": 1, "vector": [1]}, headers=k)
    check(st == 404, f"unknown index data plane: {st}")
    st, body, _ = http("DELETE", base + "/indexes/raw-one", headers=k)
    check(st == 202, f"delete: {st}")
    print("raw HTTP cases: ok")


def copy_case(postersim, base, tmp):
    """`postersim pinecone copy` from this server into another store, interrupted once and resumed; the copy is
    then served by a second `postersim serve` and compared record by record."""
    k = {"Api-Key": KEY}
    st, body, _ = http("POST", base + "/indexes", body={"name": "copy-src", "dimension": 6, "metric": "euclidean",
                                                        "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}}, headers=k)
    check(st == 201, f"create copy-src: {st} {body}")
    rng = random.Random(5)
    recs = [{"id": f"c{i:03d}", "values": [rng.uniform(-1, 1) for _ in range(6)],
             "metadata": {"n": i, "tag": ["x", "y"][i % 2]}} for i in range(250)]
    st, body, _ = http("POST", base + "/index/copy-src/vectors/upsert", body={"vectors": recs, "namespace": "ns1"}, headers=k)
    check(st == 200, f"upsert copy-src: {st}")
    dest = os.path.join(tmp, "dest.sqlite")
    cmd = [postersim, "pinecone", "copy", "--from", base, "--index", "copy-src", "--api-key", KEY, "--namespace", "ns1",
           "--to-index", "copied", "--db", dest, "--page-size", "40", "--json"]
    first = json.loads(subprocess.check_output(cmd + ["--stop-after-pages", "2"], stderr=subprocess.DEVNULL))
    check(not first["finished"] and first["copied"] == 80 and first["destinationCount"] == 80, f"interrupted copy: {first}")
    second = json.loads(subprocess.check_output(cmd, stderr=subprocess.DEVNULL))
    check(second["finished"] and second["resumed"] and second["copied"] == 170 and second["destinationCount"] == 250,
          f"resumed copy: {second}")
    port = free_port()
    other = start_server(postersim, dest, port, ["--api-key", KEY])
    try:
        dbase = f"http://127.0.0.1:{port}/pinecone"
        st, d, _ = http("GET", dbase + "/indexes/copied", headers=k)
        check(st == 200 and d["dimension"] == 6 and d["metric"] == "euclidean", f"copied index: {d}")
        for start in range(0, 250, 100):
            q = "&".join(f"ids={r['id']}" for r in recs[start:start + 100])
            st, got, _ = http("GET", dbase + f"/index/copied/vectors/fetch?namespace=ns1&{q}", headers=k)
            for r in recs[start:start + 100]:
                g = got["vectors"][r["id"]]
                check(all(abs(a - b) < 1e-6 for a, b in zip(g["values"], r["values"])) and g["metadata"] == r["metadata"],
                      f"copied record {r['id']}")
    finally:
        other.terminate()
        other.wait(timeout=30)
    print("pinecone copy (interrupted, resumed, served by a second serve): ok")


def orchestrate(args):
    root = os.path.abspath(args.venvs)
    os.makedirs(root, exist_ok=True)
    pythons = {v: ensure_venv(root, v) for v in SDK_VERSIONS}
    stores = [("SQLite", None)]
    pg = os.environ.get("POSTERSIM_TEST_PG_URL")
    if pg:
        schema = "pinecone_sdk_" + "".join(random.choice("abcdefghij") for _ in range(10))
        stores.append(("PostgreSQL", pg + ("&" if "?" in pg else "?") + "schema=" + schema))
    elif os.environ.get("CI") == "true":
        raise SystemExit("POSTERSIM_TEST_PG_URL is not set (run under scripts/pgserver run)")
    else:
        print("PostgreSQL: skipped (no POSTERSIM_TEST_PG_URL; `scripts/pgserver run` sets it)")
    failed = [label for label, store in stores if not run_suite(args, pythons, label, store)]
    if failed:
        raise SystemExit("pinecone SDK tests failed on " + ", ".join(failed))
    print("pinecone SDK tests: all passed")


def run_suite(args, pythons, label, store):
    """Everything against one store; True when it all passed."""
    print(f"=== {label}", flush=True)
    tmp = tempfile.mkdtemp(prefix="pinecone-sdk-")
    db = os.path.join(tmp, "store.sqlite")
    seed_movie_store(args.postersim, db)
    if store:
        subprocess.check_call([args.postersim, "export", "--db", db, "--to", store], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    port = free_port()
    server = start_server(args.postersim, db, port, ["--api-key", KEY], store)
    ok = True
    try:
        base = f"http://127.0.0.1:{port}/pinecone"
        raw_http_cases(base)
        for version, python in pythons.items():
            env = {**os.environ, "PINECONE_API_KEY": "", "PINECONE_DEBUG_CURL": ""}
            cmd = [python, os.path.abspath(__file__), "client", "--base", base, "--key", KEY,
                   "--api", f"http://127.0.0.1:{port}", "--suffix", version.split(".")[0]]
            print(f"--- pinecone=={version}", flush=True)
            if subprocess.call(cmd, env=env) != 0:
                ok = False
        copy_case(args.postersim, base, tmp)
        # Restart: the indexes and their records survive.
        server.terminate()
        server.wait(timeout=30)
        server = start_server(args.postersim, db, port, ["--api-key", KEY], store)
        st, body, _ = http("GET", base + "/indexes", headers={"Api-Key": KEY})
        names = {i["name"] for i in body["indexes"]}
        check("keep-5" in names and "keep-10" in names, f"indexes after restart: {names}")
        st, body, _ = http("POST", base + "/index/keep-5/describe_index_stats", body={}, headers={"Api-Key": KEY})
        check(body["totalVectorCount"] == 3, f"records after restart: {body}")
        for name in os.listdir(tmp):
            if name.endswith(".log"):
                check(KEY not in open(os.path.join(tmp, name)).read(), "the key appears in a server log")
        print("restart and log checks: ok")
    except Exception:
        import traceback
        traceback.print_exc()
        ok = False
    finally:
        server.terminate()
        server.wait(timeout=30)
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        print(f"{label}: FAILED (server logs in {tmp})")
    return ok


# ---------------------------------------------------------------------------------------------------------------------
# Client (inside a venv with the SDK)


def client(args):
    import numpy as np
    import pinecone
    from pinecone import Pinecone, ServerlessSpec

    major = int(pinecone.__version__.split(".")[0]) if hasattr(pinecone, "__version__") else int(args.suffix)
    print("sdk", getattr(pinecone, "__version__", args.suffix), flush=True)
    pc = Pinecone(api_key=args.key, host=args.base)
    sfx = args.suffix
    rng = np.random.default_rng(int(sfx))

    def brute(vectors, metas, ids, q, k, metric, flt=None):
        """Exact top-k by NumPy in float64: the reference every query is checked against."""
        keep = [i for i in range(len(ids)) if flt is None or eval_filter(flt, metas[i])]
        if not keep:
            return []
        m = vectors[keep].astype(np.float64)
        qq = np.asarray(q, dtype=np.float64)
        if metric == "cosine":
            s = (m @ qq) / (np.linalg.norm(m, axis=1) * np.linalg.norm(qq))
            order = sorted(range(len(keep)), key=lambda j: (-s[j], ids[keep[j]].encode()))
        elif metric == "dotproduct":
            s = m @ qq
            order = sorted(range(len(keep)), key=lambda j: (-s[j], ids[keep[j]].encode()))
        else:
            s = ((m - qq) ** 2).sum(axis=1)
            order = sorted(range(len(keep)), key=lambda j: (s[j], ids[keep[j]].encode()))
        return [(ids[keep[j]], float(s[j])) for j in order[:k]]

    def same_ranking(got, want, what):
        """Ids and scores equal, allowing float32 rounding; where scores tie within rounding, either order."""
        check(len(got) == len(want), f"{what}: {len(got)} matches, expected {len(want)}")
        for (gid, gs), (wid, ws) in zip(got, want):
            check(abs(gs - ws) <= 1e-4 * max(1.0, abs(ws)), f"{what}: score {gs} for {gid}, expected {ws} ({wid})")
        gs = {i for i, _ in got}
        ws = {i for i, _ in want}
        if gs != ws:
            # Only a tie at the boundary may swap members.
            boundary = want[-1][1]
            diff = gs ^ ws
            check(all(abs(s - boundary) <= 1e-4 * max(1.0, abs(boundary)) for i, s in got + want if i in diff),
                  f"{what}: ids {sorted(gs)} vs {sorted(ws)}")

    # --- control plane
    names = {}
    for metric in ["cosine", "euclidean", "dotproduct"]:
        name = f"sdk{sfx}-{metric}"
        if pc.has_index(name):
            pc.delete_index(name)
        pc.create_index(name=name, dimension=8, metric=metric, spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        names[metric] = name
    listed = pc.list_indexes()
    listed_names = set(listed.names()) if hasattr(listed, "names") else {i.name for i in listed}
    check(set(names.values()) <= listed_names, f"list_indexes: {listed_names}")
    check({"clip", "resnet50", "vgg16"} <= listed_names, "model indexes listed")
    for metric, name in names.items():
        d = pc.describe_index(name)
        check(d.dimension == 8, f"describe dimension {d.dimension}")
        check(d.metric == metric, f"describe metric {d.metric}")
        check(d.host == f"{args.api}/pinecone/index/{name}", f"host {d.host}")
        check(d.status.ready if hasattr(d.status, "ready") else d.status["ready"], "ready")
        if major >= 10:
            check(d.schema.fields["_values"].dimension == 8, "schema dimension")
    check(pc.has_index(names["cosine"]) and not pc.has_index(f"sdk{sfx}-absent"), "has_index")
    try:
        pc.create_index(name=names["cosine"], dimension=8, metric="cosine", spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        check(False, "duplicate create accepted")
    except Exception as e:
        check(getattr(e, "status", None) == 409 or getattr(e, "status_code", None) == 409 or "409" in str(e), f"duplicate: {e}")
    try:
        pc.describe_index(f"sdk{sfx}-absent")
        check(False, "unknown index described")
    except Exception as e:
        check("404" in str(e) or getattr(e, "status", None) == 404 or getattr(e, "status_code", None) == 404, f"unknown: {e}")

    # --- data plane, per metric
    n = 700
    ids = [f"doc-{i:04d}" for i in range(n)]
    genres = ["drama", "comedy", "horror", "sci-fi"]
    for metric, name in names.items():
        idx = pc.Index(host=pc.describe_index(name).host)
        vecs = rng.normal(size=(n, 8)).astype(np.float32)
        vecs[5] = vecs[4]  # an exact tie, broken by id
        metas = []
        for i in range(n):
            m = {"year": int(1980 + i % 40), "rating": float(i % 10) / 2, "genre": genres[i % 4],
                 "tags": [genres[i % 4], genres[(i + 1) % 4]] if i % 3 else ["solo"], "flag": bool(i % 2)}
            if i % 7 == 0:
                del m["year"]
            metas.append(m)
        batch = [{"id": ids[i], "values": vecs[i].tolist(), "metadata": metas[i]} for i in range(n)]
        for start in range(0, n, 250):
            r = idx.upsert(vectors=batch[start:start + 250])
            check(r.upserted_count == len(batch[start:start + 250]), f"upserted {r.upserted_count}")
        idx.upsert(vectors=[("ns-a", vecs[0].tolist()), ("ns-b", vecs[1].tolist())], namespace="other")
        st = idx.describe_index_stats()
        check(st.total_vector_count == n + 2, f"stats total {st.total_vector_count}")
        check(st.namespaces[""].vector_count == n and st.namespaces["other"].vector_count == 2, f"stats {st.namespaces}")
        check(st.dimension == 8, "stats dimension")

        filters = [
            None,
            {"genre": "drama"},
            {"genre": {"$ne": "drama"}},
            {"year": {"$gte": 2000, "$lt": 2010}},
            {"year": {"$gt": 1990}, "flag": True},
            {"genre": {"$in": ["comedy", "horror"]}},
            {"genre": {"$nin": ["comedy", "horror"]}},
            {"tags": "sci-fi"},
            {"tags": {"$in": ["solo"]}},
            {"tags": {"$nin": ["solo", "drama"]}},
            {"year": {"$exists": False}},
            {"$or": [{"rating": {"$lte": 1}}, {"genre": {"$eq": "sci-fi"}}]},
            {"$and": [{"rating": {"$gt": 2}}, {"$or": [{"flag": False}, {"year": {"$exists": False}}]}]},
            {"rating": 4.5},
            {"year": {"$eq": "2000"}},
        ]
        for trial, flt in enumerate(filters):
            q = rng.normal(size=8).astype(np.float32) if trial != 1 else vecs[4]
            k = [10, 3, 50, 7][trial % 4]
            res = idx.query(vector=q.tolist(), top_k=k, filter=flt, include_metadata=True, include_values=trial % 2 == 0)
            got = [(m.id, m.score) for m in res.matches]
            want = brute(vecs, metas, ids, q, k, metric, flt)
            same_ranking(got, want, f"{metric} query filter={flt}")
            for m in res.matches:
                j = ids.index(m.id)
                check(dict(m.metadata) == metas[j], f"metadata of {m.id}: {m.metadata} vs {metas[j]}")
                if trial % 2 == 0:
                    check(np.allclose(m.values, vecs[j]), f"values of {m.id}")
        # The tie: rows 4 and 5 hold the same vector; querying it ranks doc-0004 before doc-0005.
        res = idx.query(vector=vecs[4].tolist(), top_k=2)
        if metric != "dotproduct":
            check([m.id for m in res.matches] == ["doc-0004", "doc-0005"], f"tie order {[m.id for m in res.matches]}")
        # By id equals by its vector.
        by_id = idx.query(id="doc-0010", top_k=5)
        by_vec = idx.query(vector=vecs[10].tolist(), top_k=5)
        check([m.id for m in by_id.matches] == [m.id for m in by_vec.matches], "query by id")
        check(idx.query(id="absent", top_k=3).matches == [], "query by unknown id")
        # Namespaces are apart.
        res = idx.query(vector=vecs[0].tolist(), top_k=5, namespace="other")
        check({m.id for m in res.matches} == {"ns-a", "ns-b"}, "namespace query")
        # fetch
        f = idx.fetch(ids=["doc-0001", "doc-0002", "absent"])
        check(set(f.vectors.keys()) == {"doc-0001", "doc-0002"}, f"fetch keys {list(f.vectors.keys())}")
        check(np.allclose(f.vectors["doc-0002"].values, vecs[2]), "fetch values")
        check(dict(f.vectors["doc-0002"].metadata) == metas[2], "fetch metadata")
        # update: values and set_metadata (merged)
        newv = rng.normal(size=8).astype(np.float32)
        idx.update(id="doc-0003", values=newv.tolist(), set_metadata={"genre": "western", "extra": "yes"})
        vecs[3] = newv
        metas[3] = {**metas[3], "genre": "western", "extra": "yes"}
        f = idx.fetch(ids=["doc-0003"])
        check(np.allclose(f.vectors["doc-0003"].values, newv) and dict(f.vectors["doc-0003"].metadata) == metas[3], "update")
        q = rng.normal(size=8).astype(np.float32)
        res = idx.query(vector=q.tolist(), top_k=20, filter={"genre": {"$in": ["western", "drama"]}})
        same_ranking([(m.id, m.score) for m in res.matches], brute(vecs, metas, ids, q, 20, metric, {"genre": {"$in": ["western", "drama"]}}), "after update")
        # list with prefix and pagination
        if major >= 10:
            pages = [[v.id for v in page.vectors] for page in idx.list(prefix="doc-01", limit=30)]
        else:
            pages = list(idx.list(prefix="doc-01", limit=30))
        flat = [i for p in pages for i in p]
        check(flat == sorted(i for i in ids if i.startswith("doc-01")), f"list ids {flat[:5]}...")
        check(len(pages) == 4, f"list pages {len(pages)}")
        page = idx.list_paginated(limit=5)
        check([v.id for v in page.vectors] == ids[:5] and page.pagination is not None, "list_paginated")
        page2 = idx.list_paginated(limit=5, pagination_token=page.pagination.next)
        check([v.id for v in page2.vectors] == ids[5:10], "list_paginated next page")
        # delete by ids, by filter, all
        idx.delete(ids=["doc-0000", "doc-0001"])
        gone = {"doc-0000", "doc-0001"}
        idx.delete(filter={"genre": "horror"})
        gone |= {ids[i] for i in range(n) if eval_filter({"genre": "horror"}, metas[i])}
        keep = [i for i in range(n) if ids[i] not in gone]
        st = idx.describe_index_stats()
        check(st.namespaces[""].vector_count == len(keep), f"after deletes {st.namespaces[''].vector_count} vs {len(keep)}")
        q = rng.normal(size=8).astype(np.float32)
        res = idx.query(vector=q.tolist(), top_k=25)
        kv = vecs[keep]
        same_ranking([(m.id, m.score) for m in res.matches], brute(kv, [metas[i] for i in keep], [ids[i] for i in keep], q, 25, metric), "after deletes")
        idx.delete(delete_all=True, namespace="other")
        st = idx.describe_index_stats()
        check("other" not in st.namespaces or st.namespaces["other"].vector_count == 0, "delete_all")
        # Bad input through the SDK: wrong dimension, bad filter.
        for bad in [lambda: idx.upsert(vectors=[("x", [1.0, 2.0])]),
                    lambda: idx.query(vector=[1.0] * 9, top_k=3),
                    lambda: idx.query(vector=[1.0] * 8, top_k=3, filter={"$and": "nope"})]:
            try:
                bad()
                check(False, "bad input accepted")
            except AssertionError:
                raise
            except Exception as e:
                check("400" in str(e) or getattr(e, "status", None) == 400 or getattr(e, "status_code", None) == 400, f"expected 400: {e!r}")
        print(f"{metric}: ok", flush=True)

    for name in names.values():
        pc.delete_index(name)
    check(not any(pc.has_index(nm) for nm in names.values()), "deleted")

    # An index kept for the restart check.
    keep_name = f"keep-{sfx}"
    if not pc.has_index(keep_name):
        pc.create_index(name=keep_name, dimension=4, metric="cosine", spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    kidx = pc.Index(host=pc.describe_index(keep_name).host)
    kidx.upsert(vectors=[("a", [1.0, 0.0, 0.0, 0.0], {"x": 1}), ("b", [0.0, 1.0, 0.0, 0.0]), ("c", [0.0, 0.0, 1.0, 0.0])])

    # --- the model index: query(id=…) equals /api/get-similar-movies; writes are refused with 403.
    clip = pc.Index(host=pc.describe_index("clip").host)
    check(pc.describe_index("clip").dimension == 512 if major < 10 else pc.describe_index("clip").schema.fields["_values"].dimension == 512, "clip dimension")
    res = clip.query(id="14", top_k=10, include_metadata=True)
    with urllib.request.urlopen(f"{args.api}/api/get-similar-movies?movieId=14&model=CLIP&topK=10") as r:
        api = json.loads(r.read())
    check([m.id for m in res.matches] == [m["id"] for m in api["matches"]], "clip query(id) ids")
    for m, a in zip(res.matches, api["matches"]):
        check(abs(m.score - a["score"]) < 1e-6, "clip scores")
        check(dict(m.metadata) == {k: v for k, v in a["metadata"].items()}, f"clip metadata {dict(m.metadata)} vs {a['metadata']}")
    st = clip.describe_index_stats()
    check(st.total_vector_count == MOVIES, f"clip count {st.total_vector_count}")
    f = clip.fetch(ids=["14", "999999"])
    check(set(f.vectors.keys()) == {"14"} and np.allclose(f.vectors["14"].values, movie_vector(2), atol=1e-6), "clip fetch")
    for write in [lambda: clip.upsert(vectors=[("1", [0.0] * 512)]),
                  lambda: clip.delete(ids=["14"]),
                  lambda: clip.update(id="14", set_metadata={"a": "b"})]:
        try:
            write()
            check(False, "write to a model index accepted")
        except AssertionError:
            raise
        except Exception as e:
            check("403" in str(e) or getattr(e, "status", None) == 403 or getattr(e, "status_code", None) == 403, f"expected 403: {e!r}")
            check("postersim ingest" in str(e), f"403 names ingest: {e}")
    try:
        pc.delete_index("clip")
        check(False, "model index deleted")
    except AssertionError:
        raise
    except Exception as e:
        check("403" in str(e) or getattr(e, "status", None) == 403 or getattr(e, "status_code", None) == 403, f"delete clip: {e!r}")
    # No key, wrong key through the SDK.
    bad = Pinecone(api_key="wrong", host=args.base)
    try:
        bad.list_indexes()
        check(False, "wrong key accepted")
    except AssertionError:
        raise
    except Exception as e:
        check("401" in str(e) or getattr(e, "status", None) == 401 or getattr(e, "status_code", None) == 401, f"wrong key: {e!r}")
        check(args.key not in str(e), "key echoed")
    print(f"sdk {sfx}: all calls ok", flush=True)


def eval_filter(f, meta):
    """Pinecone's filter language over one record's metadata, written independently of the server's evaluator."""
    for key, cond in f.items():
        if key == "$and":
            if not all(eval_filter(c, meta) for c in cond):
                return False
            continue
        if key == "$or":
            if not any(eval_filter(c, meta) for c in cond):
                return False
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        present = key in meta
        val = meta.get(key)

        def eq(x):
            if isinstance(val, list):
                return isinstance(x, str) and x in val
            if isinstance(val, bool) or isinstance(x, bool):
                return isinstance(val, bool) and isinstance(x, bool) and val == x
            if isinstance(val, (int, float)) and isinstance(x, (int, float)):
                return float(val) == float(x)
            return isinstance(val, str) and isinstance(x, str) and val == x

        def num():
            return val if isinstance(val, (int, float)) and not isinstance(val, bool) else None

        for op, arg in ops.items():
            if op == "$exists":
                ok = present == arg
            elif op == "$ne":
                ok = (not present) or not eq(arg)
            elif op == "$nin":
                ok = (not present) or not any(eq(a) for a in arg)
            elif not present:
                ok = False
            elif op == "$eq":
                ok = eq(arg)
            elif op == "$in":
                ok = any(eq(a) for a in arg)
            else:
                v = num()
                ok = v is not None and {"$gt": v > arg, "$gte": v >= arg, "$lt": v < arg, "$lte": v <= arg}[op]
            if not ok:
                return False
    return True


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode")
    c = sub.add_parser("client")
    c.add_argument("--base", required=True)
    c.add_argument("--api", required=True)
    c.add_argument("--key", required=True)
    c.add_argument("--suffix", required=True)
    p.add_argument("--postersim", default=".build/debug/postersim")
    p.add_argument("--venvs", default=".build/pinecone-sdk")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    if args.mode == "client":
        client(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
