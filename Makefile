# uxcx: the front door. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UXCX   := $(BIN)/uxcx
HOST   ?= 127.0.0.1
PORT   ?= 8000
# make train CORRECTIONS="a.jsonl b.jsonl" TRAIN_ARGS="--force"
CORRECTIONS ?=
TRAIN_ARGS  ?=

.PHONY: help install train eval test fuzz audit bench bench-relabel soak asset run clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/uxcx: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/uxcx  ## create .venv and install uxcx (editable) with dev extras

train: install  ## train a new version (+ CORRECTIONS=files), promote it only if the gate passes (exit 3 if not)
	$(UXCX) train $(if $(strip $(CORRECTIONS)),--corrections $(CORRECTIONS)) $(TRAIN_ARGS)

eval: install  ## evaluate the current model on the held-out split and on real-dev when present
	$(UXCX) evaluate
	@if [ -f ../shared/data/real-dev.jsonl ]; then $(UXCX) evaluate --data ../shared/data/real-dev.jsonl; fi

test: install  ## run the test suite (trains a model first if there is none)
	@[ -f models/current ] || $(UXCX) train
	$(BIN)/pytest -q

fuzz: install  ## fuzz the API from its OpenAPI schema with schemathesis (500 examples per operation)
	@[ -f models/current ] || $(UXCX) train
	UXCX_FUZZ_EXAMPLES=500 $(BIN)/pytest -q tests/test_fuzz.py

audit: install  ## list likely mislabeled corpus examples (+ CORRECTIONS) in var/audit/suspects.jsonl
	$(BIN)/pip install --quiet -e '.[audit]'
	$(UXCX) data audit $(if $(strip $(CORRECTIONS)),--corrections $(CORRECTIONS))

bench: install  ## accuracy/speed vs fastText, spaCy, TF-IDF+LR; API load test; relabel 1M rows
	@[ -f models/current ] || $(UXCX) train
	$(BIN)/python -m bench.compare
	@command -v wrk >/dev/null || apt-get install -y -q wrk
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.relabel

bench-relabel: install  ## relabel a generated 1M-row CSV: workers 1, 2, Dask (time, rows/s, peak RSS)
	@[ -f models/current ] || $(UXCX) train
	$(BIN)/python -m bench.relabel

soak: install  ## 200,000 classify requests on loopback, RSS every 10,000; fails if RSS grows >= 10 % after warm-up
	@[ -f models/current ] || $(UXCX) train
	$(BIN)/python -m bench.soak

asset: install  ## rebuild the static embedding asset (installs the optional torch extra)
	$(BIN)/pip install --quiet -e '.[asset]'
	$(UXCX) asset build
	$(UXCX) asset verify

run: install  ## install, train if there is no current model, and serve
	@[ -f models/current ] || $(UXCX) train
	$(UXCX) serve --host $(HOST) --port $(PORT)

clean:  ## remove the virtualenv and caches (keeps models/)
	rm -rf $(VENV) .pytest_cache build *.egg-info
