# PosterSim: the README explains each target.
SWIFT ?= swift
RELEASE_BIN = .build/release/postersim
DEMO_OUT = .build/demo

.PHONY: all build release test demo bootstrap clean bench-store

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product postersim

# Everything the tests need, then the whole test suite.
test:
	scripts/bootstrap --test
	$(SWIFT) test

# The main job. For now: preprocess a generated sample poster for each model and write the tensors as .npy.
demo: release
	@mkdir -p $(DEMO_OUT)
	@for m in clip resnet50 vgg16; do \
		$(RELEASE_BIN) preprocess --model $$m Tests/Fixtures/images/jpeg_large_500x750.jpg --out $(DEMO_OUT)/poster-$$m.npy || exit 1; \
	done
	@echo "demo: wrote $(DEMO_OUT)/poster-{clip,resnet50,vgg16}.npy"

# Exact search latency of the embedded store next to faiss-cpu on the same vectors (see Benchmarks/StoreBench).
# faiss comes from the reference environment; PYTHON=/path/to/python uses another one that has faiss-cpu and numpy.
PYTHON ?= .venv-reference/bin/python
BENCH_STORE_ARGS ?=
bench-store:
	@if [ "$(PYTHON)" = ".venv-reference/bin/python" ]; then scripts/bootstrap --reference; fi
	$(SWIFT) build -c release --product postersim-bench-store
	.build/release/postersim-bench-store --python $(PYTHON) --faiss-script bench/faiss_flat.py $(BENCH_STORE_ARGS)

clean:
	rm -rf .build
