# Two entry points: `make run` and `make test`. Both create the virtualenv and install when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
INDEX ?= .rag
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install index run test lint eval bench load screenshots reader span static small-encoder clean
CHROMIUM := /usr/bin/chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,eval]'
	touch $(STAMP)

install: $(STAMP)

# The test path also builds llama-cpp-python (the local-llm extra, ~4 min once) for the llama.cpp server test.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,eval,local-llm]'
	touch $(TEST_STAMP)

# The browser tests drive Debian's Chromium (never a browser download).
$(CHROMIUM):
	apt-get install -y chromium >/dev/null || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null)

# tests/test_int8.py runs the models on an emulated AVX2-only CPU with Debian's qemu-user (x86-64 machines).
ifeq ($(shell uname -m),x86_64)
QEMU := /usr/bin/qemu-x86_64
$(QEMU):
	apt-get install -y qemu-user >/dev/null || (apt-get update >/dev/null && apt-get install -y qemu-user >/dev/null)
endif

# Idempotent: unchanged files are skipped by size and mtime, so this is instant once built.
index: install
	$(BIN)/rag ingest corpus/ --index $(INDEX) --sync

run: index
	$(BIN)/rag serve --index $(INDEX)

lint: install
	$(BIN)/ruff check rag ingest evals tests bench app.py
	$(BIN)/mypy rag ingest evals bench app.py

test: $(TEST_STAMP) $(CHROMIUM) $(QEMU)
	$(BIN)/python -m pytest
	$(BIN)/rag eval evals/gold/seed.jsonl --corpus corpus/ --index $$(mktemp -d) --report reports/seed \
		--fail-under answer_accuracy=0.9 citation_precision=0.8 citation_recall=0.95 refusal_recall=0.95 refusal_precision=0.9 span_exact=1.0

eval: install
	$(BIN)/rag eval squad2 --baseline --report reports/squad2
	$(BIN)/rag eval realtimeqa --baseline --index reports/.news-index --report reports/realtimeqa
	$(BIN)/rag eval multihop --index reports/.news-index --report reports/multihop

# Measured figures, each against the baseline in the same run where there is one (README: Speed and scale).
bench: install
	$(BIN)/python -m bench.ingest --corpus news
	$(BIN)/python -m bench.query --corpus news
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.load

# Train the reader again (about an hour on 2 cores; resumes after an interruption) into models/reader, starting from
# the committed short-answer model (models/span). `make run` and `make test` never train: they use the committed
# models/reader/reader.int8.onnx.
reader: install
	$(BIN)/python -m evals.train_reader --init-from models/span --questions 24000 --out models/reader
	$(BIN)/python -m evals.tune --reader trained --write

# Train the short-answer model again (about 45 minutes on 2 cores; resumes after an interruption) into models/span:
# the reader's starting point (`make reader`), read at run time only with RAG_SPAN_MODEL=models/span.
span: install
	$(BIN)/python -m evals.train_reader --span-only --questions 90000 --out models/span --work .span-work

# Distil and tune the static chunk encoder again (about 6 minutes on 2 cores) into models/static. `make run` and
# `make test` never do: they use the committed models/static/table.int8.npz.
static: install
	$(BIN)/python -m evals.distill_static --out models/static

# Distil the small chunk encoder again (about an hour on 2 cores; resumes after an interruption) into
# models/small-encoder. `make run` and `make test` never do: they use the committed model.int8.onnx.
small-encoder: install
	$(BIN)/python -m evals.distill_small --out models/small-encoder

# 20 concurrent chat sessions for 2 minutes against the app on loopback: errors, right answers, p95, memory.
load: install
	$(BIN)/python -m bench.load --sessions 20 --seconds 120

# The README's screenshots of the chat and the corpus tab, taken by the browser tests.
screenshots: install $(CHROMIUM)
	RAG_SCREENSHOT_DIR=docs $(BIN)/python -m pytest tests/test_browser.py -q

clean:
	rm -rf $(VENV) $(INDEX) reports
