"""What the cross-lingual index costs: ingest throughput and question latency, with it and without it, in
the same run on the same machine.

    .venv/bin/python bench/crosslingual_bench.py [--corpus debian-faq-docx] [--queries 20]

- ingest: the corpus into a fresh store with ``crosslingual=off`` (the English model only) and with
  ``crosslingual=on`` (every chunk embedded a second time by EmbeddingGemma-300M); chunks per second and
  the ratio;
- questions (extractive ``ask``, warm): English questions with the index off and on (an English question
  over an English store does not search it, so these should match), and Chinese questions with it on
  (the multilingual query embedding and the cross-lingual reader's sentence embeddings); p50, p95, ratio.

Questions come from the evaluation sets over the same kind of corpus (their topic does not change the cost).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.answer_bench import pct, timed  # noqa: E402
from bench.corpora import prepare  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="debian-faq-docx")
    p.add_argument("--english", type=Path, default=ROOT / "eval" / "debian-faq-docx.json")
    p.add_argument("--chinese", type=Path, default=ROOT / "eval" / "debian-reference-zh2en.json")
    p.add_argument("--queries", type=int, default=20)
    args = p.parse_args()
    from rag import RAG

    docs = prepare(args.corpus)
    english = [q["question"] for q in json.loads(args.english.read_text())["questions"]][: args.queries]
    chinese = [q["question"] for q in json.loads(args.chinese.read_text())["questions"]][: args.queries]
    out = ROOT / "bench" / "out" / "crosslingual"
    rows, rags = [], {}
    for mode in ("off", "on"):
        store = out / mode
        shutil.rmtree(store, ignore_errors=True)
        rag = RAG(docs_dir=docs, store_dir=store, crosslingual=mode)
        rag.embedder.embed(["warm up"])
        if mode == "on":
            rag.xl_embedder.embed(["warm up"])
        t = time.perf_counter()
        report = rag.ingest()
        seconds = time.perf_counter() - t
        rows.append((mode, report.chunks, seconds))
        rags[mode] = rag
    base = rows[0][1] / rows[0][2]
    print(f"## ingest of {args.corpus}\n")
    print("| cross-lingual | chunks | seconds | chunks/s | ratio |\n|---|---|---|---|---|")
    for mode, chunks, seconds in rows:
        print(f"| {mode} | {chunks} | {seconds:.1f} | {chunks / seconds:.1f} | {chunks / seconds / base:.2f} |")

    print("\n## questions (extractive ask, warm, ms)\n")
    print("| questions | cross-lingual | p50 | p95 | ratio |\n|---|---|---|---|---|")
    runs = [("English", "off", english), ("English", "on", english), ("Chinese", "on", chinese)]
    for _, mode, qs in runs:
        rags[mode].ask(qs[0])  # load models, build the keyword index
    baseline = None
    for lang, mode, qs in runs:
        values = timed(rags[mode].ask, qs)
        baseline = baseline or statistics.median(values)
        ratio = statistics.median(values) / baseline
        print(f"| {lang} | {mode} | {statistics.median(values):.0f} | {pct(values, 0.95):.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
