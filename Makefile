# Set-up and the two jobs of the README. Everything installs into .venv; torch is pinned to the CPU build
# (an unpinned torch pulls several GB of CUDA packages).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEED_INDEX := indexes/seeds

.PHONY: install demo test calibrate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Index the seed articles, show the story clusters and the report of one pair.
demo: install
	$(BIN)/detector index --index $(SEED_INDEX) seeds/
	$(BIN)/detector clusters --index $(SEED_INDEX)
	$(BIN)/detector clusters --index $(SEED_INDEX) --format jsonl
	$(BIN)/detector report --index $(SEED_INDEX) 000_753ce58687d42374 002_dcb24eba52aa9a74

# The whole test suite, the real-model tests included.
test: install
	$(BIN)/python -m pytest -q

# Refit detector/params.json on the labelled sets (DATA=../shared/data).
DATA ?= ../shared/data
calibrate: install
	$(BIN)/python scripts/calibrate.py --data $(DATA) --write

clean:
	rm -rf $(VENV) indexes/seeds
