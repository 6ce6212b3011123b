# ragline: every target creates .venv when it is missing.
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# When make started: `make test` reports its wall time, installing included.
STARTED := $(shell date +%s)

RAGLINE_DATA_DIR ?= data
RAGLINE_PORT ?= 8000
RAGLINE_LOG_FORMAT ?= console
export RAGLINE_DATA_DIR RAGLINE_PORT

.PHONY: venv run test test-slow test-faults lint format bench eval-scifact scorer screenshots clean

venv: $(STAMP)

# torch==2.13.0 is the CPU build; an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo handbook is indexed only while no other folder's version is active: make run never
# replaces a knowledge base you promoted. `make run DOCS=folder` indexes (and promotes) yours.
DOCS ?=
run: venv
	RAGLINE_LOG_FORMAT=$(RAGLINE_LOG_FORMAT) $(BIN)/ragline db upgrade
	RAGLINE_LOG_FORMAT=$(RAGLINE_LOG_FORMAT) $(BIN)/ragline index build \
		$(or $(DOCS),examples/handbook) --promote --if-changed $(if $(DOCS),,--keep-other)
	RAGLINE_LOG_FORMAT=$(RAGLINE_LOG_FORMAT) RAGLINE_API_DOCS=true $(BIN)/ragline serve

# The suite a newcomer runs (pyproject's addopts leave out the slow and faults markers).
test: venv
	@$(BIN)/pytest --durations=15; status=$$?; \
	echo "make test: $$(( $$(date +%s) - $(STARTED) )) s wall time (installing included)"; \
	exit $$status

# The end-to-end journeys whose subject is a real process (the console script serving, the
# deployed server and worker) and minute-long concurrency proofs; CI runs them after test.
test-slow: venv
	$(BIN)/pytest -m slow --durations=10

# The deployed topology under faults (its own redis-server, a fresh Postgres database).
test-faults: venv
	$(BIN)/pytest -m faults tests/faults

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Every benchmark in turn; one that needs data this clone lacks (SciFact) exits 77 and is
# reported as skipped, any other failure fails the target after the others have run.
bench: venv
	@failed=""; skipped=""; \
	for script in $(filter-out bench/scifact_data.py,$(wildcard bench/*.py)); do \
		echo "== $$script"; \
		SCIFACT=$(SCIFACT) $(BIN)/python "$$script"; rc=$$?; \
		if [ $$rc -eq 77 ]; then skipped="$$skipped $$script"; \
		elif [ $$rc -ne 0 ]; then failed="$$failed $$script"; fi; \
	done; \
	[ -z "$$skipped" ] || echo "skipped (no data):$$skipped"; \
	[ -z "$$failed" ] || { echo "failed:$$failed"; exit 1; }

# SciFact through `ragline eval run`: the queries are imported from the benchmark's folder
# (CC BY-NC, so not committed), the abstracts indexed into their own data folder.
SCIFACT ?= ../shared/eval/scifact
SCIFACT_ENV := RAGLINE_DATA_DIR=data/scifact RAGLINE_CONFIG=eval/scifact.yaml
eval-scifact: venv
	$(BIN)/ragline eval import-beir $(SCIFACT) --split test --out data/scifact-test.jsonl
	mkdir -p data/scifact-corpus
	ln -sf $(abspath $(SCIFACT))/corpus.jsonl data/scifact-corpus/corpus.jsonl
	$(SCIFACT_ENV) $(BIN)/ragline index build data/scifact-corpus --promote --if-changed
	$(SCIFACT_ENV) $(BIN)/ragline eval run data/scifact-test.jsonl --name scifact-test \
		--out data/scifact-run.json

# The shipped decision scorer (scorers/answerability.json) from eval/answerability/ and, when
# present, SciFact's train split; prints the held-out figures (README "The decision").
scorer: venv
	$(BIN)/python scripts/train_scorer.py --scifact $(SCIFACT)

# The web pages in chromium, as an admin sees them after a few questions: PNGs in
# docs/screenshots/ (the README links them).
screenshots: venv
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache *.egg-info
