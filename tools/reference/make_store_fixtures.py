#!/usr/bin/env python3
"""Golden results for the vector store: brute-force exact top-k in NumPy (float64) on random Float32 vectors.

Writes Tests/Fixtures/store/store_reference.npz (np.savez_compressed, well under 1 MB). The Swift tests load the
same vectors and metadata into a store and require the same ids in the same order and the same scores (to Float32
rounding).

Semantics reproduced (the store's, which follow Pinecone's `score` meaning):
  cosine     score = x.q / (|x| |q|), higher first
  euclidean  score = sum((x - q)^2) (squared distance), lower first
  ties       broken by ascending movie id
  filters    year range (a movie without a date never passes), genre id contained in genre_ids,
             original_language equal, adult equal, vote_count >= minimum
  by id      the movie itself first (if it passes the filter) unless exclude_self, then the best others

The data contain exact ties (duplicated rows under other ids) near the queries; the script checks that every other
pair of neighbouring results is separated by a margin, so float32 and float64 arithmetic give the same order.

Usage: /opt/postersim-ref/bin/python tools/reference/make_store_fixtures.py [--out PATH]
"""
import argparse
import os

import numpy as np

K = 10
N = 400
DIMS = {"cosine": 67, "euclidean": 40}  # not multiples of 16 or 8, to exercise the kernels' tails
GENRES = [28, 12, 16, 35, 80, 99, 18, 10751, 14, 36, 27, 10402, 9648, 10749, 878, 10770, 53, 10752, 37]
LANGS = ["en", "fr", "ja", "ko", "es"]
# min_year, max_year, genre, lang (index into LANGS), adult (0/1), min_votes; -1 = no restriction
FILTERS = np.array(
    [
        [-1, -1, -1, -1, -1, -1],
        [1980, 2010, -1, -1, -1, -1],
        [-1, -1, 18, -1, -1, -1],
        [-1, -1, -1, 1, -1, 100],
        [2000, -1, -1, -1, 0, -1],
        [-1, 1999, 35, 0, 0, 500],
    ],
    dtype=np.int64,
)
MARGIN = 2e-5  # minimum relative gap between neighbouring results whose vectors differ


def make_metadata(rng):
    ids = rng.choice(np.arange(1, 1_000_000), size=N, replace=False).astype(np.int64)
    year = rng.integers(1950, 2025, size=N).astype(np.int64)
    year[rng.random(N) < 0.08] = -1  # no release date
    genres = np.full((N, 3), -1, dtype=np.int64)
    for i in range(N):
        n = rng.integers(0, 4)
        genres[i, :n] = rng.choice(GENRES, size=n, replace=False)
    lang = rng.choice(len(LANGS), size=N, p=[0.5, 0.2, 0.1, 0.1, 0.1]).astype(np.int64)
    adult = (rng.random(N) < 0.1).astype(np.uint8)
    votes = rng.integers(0, 3000, size=N).astype(np.int64)
    return ids, year, genres, lang, adult, votes


def passes(f, i, year, genres, lang, adult, votes):
    min_year, max_year, genre, lg, ad, min_votes = f
    if min_year >= 0 or max_year >= 0:
        if year[i] < 0:
            return False
        if min_year >= 0 and year[i] < min_year:
            return False
        if max_year >= 0 and year[i] > max_year:
            return False
    if genre >= 0 and genre not in genres[i]:
        return False
    if lg >= 0 and lang[i] != lg:
        return False
    if ad >= 0 and adult[i] != ad:
        return False
    if min_votes >= 0 and votes[i] < min_votes:
        return False
    return True


def scores64(metric, X, q):
    X64 = X.astype(np.float64)
    q64 = q.astype(np.float64)
    if metric == "cosine":
        return (X64 @ q64) / (np.linalg.norm(X64, axis=1) * np.linalg.norm(q64))
    return ((X64 - q64) ** 2).sum(axis=1)


def ranking(metric, s, ids, allowed):
    rows = np.nonzero(allowed)[0]
    key = -s[rows] if metric == "cosine" else s[rows]
    order = np.lexsort((ids[rows], key))  # by key, then id ascending
    return rows[order]


def check_margin(metric, X, s, ranked, count):
    # Neighbours in the top count+1 (the boundary matters too) must be exact ties (same vector) or clearly apart.
    top = ranked[: count + 1]
    for a, b in zip(top[:-1], top[1:]):
        if np.array_equal(X[a], X[b]):
            assert s[a] == s[b]
            continue
        gap = abs(s[a] - s[b])
        scale = max(1.0, abs(s[a]))
        if gap <= MARGIN * scale:
            return False
    return True


def padded(rows, ids, s, k):
    out_ids = np.full(k, -1, dtype=np.int64)
    out_scores = np.full(k, np.nan, dtype=np.float64)
    out_ids[: len(rows)] = ids[rows][:k]
    out_scores[: len(rows)] = s[rows][:k]
    return out_ids, out_scores


def build(seed):
    rng = np.random.default_rng(seed)
    ids, year, genres, lang, adult, votes = make_metadata(rng)
    arrays = {
        "ids": ids, "year": year, "genres": genres, "lang": lang, "adult": adult, "votes": votes,
        "filters": FILTERS, "k": np.array([K], dtype=np.int64),
        "langs": np.array([[ord(c) for c in s] for s in LANGS], dtype=np.uint8),
    }
    for metric, d in DIMS.items():
        X = rng.standard_normal((N, d)).astype(np.float32)
        if metric == "euclidean":
            X *= np.float32(3.0)
        # Exact ties: copy 30 source rows over other rows (sometimes twice), so equal vectors have different ids.
        sources = rng.choice(N, size=30, replace=False)
        targets = rng.choice(np.setdiff1d(np.arange(N), sources), size=45, replace=False)
        for j, t in enumerate(targets):
            X[t] = X[sources[j % 30]]
        # Queries: near a duplicated row (ties at the top), and random ones.
        near = X[sources[:6]] + np.float32(0.05) * rng.standard_normal((6, d)).astype(np.float32)
        far = rng.standard_normal((4, d)).astype(np.float32)
        Q = np.concatenate([near, far]).astype(np.float32)
        by_id_rows = np.concatenate([sources[6:10], targets[:2], rng.choice(N, size=2, replace=False)])

        exp_ids = np.full((len(Q), len(FILTERS), K), -1, dtype=np.int64)
        exp_scores = np.full((len(Q), len(FILTERS), K), np.nan, dtype=np.float64)
        for qi, q in enumerate(Q):
            s = scores64(metric, X, q)
            for fi, f in enumerate(FILTERS):
                allowed = np.array([passes(f, i, year, genres, lang, adult, votes) for i in range(N)])
                ranked = ranking(metric, s, ids, allowed)
                if not check_margin(metric, X, s, ranked, K):
                    return None
                exp_ids[qi, fi], exp_scores[qi, fi] = padded(ranked, ids, s, K)

        by_ids = np.full((len(by_id_rows), len(FILTERS), 2, K), -1, dtype=np.int64)
        by_scores = np.full((len(by_id_rows), len(FILTERS), 2, K), np.nan, dtype=np.float64)
        for bi, r in enumerate(by_id_rows):
            s = scores64(metric, X, X[r])
            for fi, f in enumerate(FILTERS):
                allowed = np.array([passes(f, i, year, genres, lang, adult, votes) for i in range(N)])
                self_ok = allowed[r]
                allowed[r] = False
                ranked = ranking(metric, s, ids, allowed)
                if not check_margin(metric, X, s, ranked, K):
                    return None
                for ex in (0, 1):
                    rows = list(ranked)
                    if ex == 0 and self_ok:
                        rows = [r] + rows
                    by_ids[bi, fi, ex], by_scores[bi, fi, ex] = padded(np.array(rows, dtype=np.int64), ids, s, K)
        arrays[f"{metric}_vectors"] = X
        arrays[f"{metric}_queries"] = Q
        arrays[f"{metric}_expected_ids"] = exp_ids
        arrays[f"{metric}_expected_scores"] = exp_scores
        arrays[f"{metric}_byid_movies"] = ids[by_id_rows]
        arrays[f"{metric}_byid_ids"] = by_ids
        arrays[f"{metric}_byid_scores"] = by_scores
    return arrays


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "Tests", "Fixtures", "store", "store_reference.npz")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=default_out)
    args = ap.parse_args()
    for seed in range(20260, 20360):
        arrays = build(seed)
        if arrays is not None:
            break
    else:
        raise SystemExit("no seed gave well-separated results")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"seed {seed}: wrote {os.path.normpath(args.out)} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
