"""Abstention trade-off: answer accuracy and false answers as `abstain_threshold` varies, for one question set.

    .venv/bin/python bench/threshold_sweep.py eval/seeds.json [--store DIR]

Every question is answered once with the threshold at 0; an answer abstains at threshold t when its best
sentence scored below t. "Accuracy" here is loose: an expected fact anywhere in the answer text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("qa_file", type=Path)
    p.add_argument("--store", type=Path, help="default: bench/out/eval-stores/NAME (shared with rag.eval)")
    args = p.parse_args()
    from rag import RAG

    qa = json.loads(args.qa_file.read_text())
    store = args.store or ROOT / "bench" / "out" / "eval-stores" / qa["name"]
    rag = RAG(docs_dir=ROOT / qa["corpus"], store_dir=store, abstain_threshold=0.0)
    rag.ingest()
    rows = []  # (answerable, best sentence score, contains a fact)
    for q in qa["questions"]:
        a = rag.ask(q["question"])
        best = max((s.support for s in a.sentences), default=0.0)
        rows.append((q["answerable"], best, any(f.lower() in a.text.lower() for f in q["facts"])))
    n_ans = sum(r[0] for r in rows)
    print(f"| threshold | accuracy (of {n_ans}) | false abstentions | false answers (of {len(rows) - n_ans}) |")
    print("|---|---|---|---|")
    for t in [x / 100 for x in range(35, 61)]:
        acc = sum(a and b >= t and ok for a, b, ok in rows)
        fab = sum(a and b < t for a, b, _ in rows)
        fa = sum(not a and b >= t for a, b, _ in rows)
        print(f"| {t:.2f} | {acc / n_ans:.2f} | {fab} | {fa} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
