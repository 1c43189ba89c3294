# contrastkit: the two commands of the quick start are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench bench-quality bench-quality-full bench-ssl bench-search lint clean

setup: $(STAMP)

# Idempotent: re-runs only when the venv is missing or pyproject.toml changed.
# torch==2.13.0 goes in first (a local CPU wheel) so that no dependency pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/contrastkit demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/losses.py --out BENCHMARKS.md

bench-quality: setup
	$(BIN)/python -m benchmarks.quality

# The complete grid (hours on 2 cores); it also runs the self-supervised benchmark (10 min budgets).
bench-quality-full: setup
	$(BIN)/python -m benchmarks.quality --full

bench-ssl: setup
	$(BIN)/python benchmarks/self_supervised.py --minutes 10 --text-minutes 3 --out BENCHMARKS.md

# Search and duplicates (about an hour on 2 cores): exact and approximate search, HNSW, dedup of
# 1e6 rows, sentence-transformers mining, Banking77 and MRPC with the shipped model. Refined
# models are scored by naming them: python -m benchmarks.search --only banking77,mrpc
# --model frozen --model 'Banking77 adapter=run/model' (see benchmarks/results/search.md).
bench-search: setup
	OMP_NUM_THREADS=2 $(BIN)/python -m benchmarks.search --only speed,approx,hnsw,dedup,mining,banking77,mrpc --mining-sizes 10000,100000,1000000

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
