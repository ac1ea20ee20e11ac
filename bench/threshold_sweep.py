"""Abstention trade-off per corpus: facts, false abstentions and false answers as the answer-probability
threshold (`abstain_threshold`) varies, on the development batches (the blind ones stay blind).

    .venv/bin/python bench/threshold_sweep.py eval/*.json [--batch dev]

Every question is answered once with the threshold at 0; an answer abstains at threshold t when the reader's
probability that its best span answers is below t (identifier-shaped names the corpus never mentions are
declined whatever t is). "Facts" is the share of answerable questions answered with an expected fact.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = [round(0.1 * i, 1) for i in range(1, 8)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("qa_files", type=Path, nargs="+")
    p.add_argument("--batch", default="dev", help="questions of this batch only ('all' for sets without batches)")
    args = p.parse_args()
    from rag import RAG
    from rag.eval.run import QASet, find_corpus, has_fact

    print("| set | " + " | ".join(f"t={t}: facts / false abst. / false ans." for t in STEPS) + " |")
    print("|---|" + "---|" * len(STEPS))
    for path in args.qa_files:
        qa = QASet.load(path)
        batched = any(q.get("batch") for q in qa.questions)
        questions = [q for q in qa.questions if (q.get("batch") if batched else "all") in (args.batch, "all")]
        rag = RAG(docs_dir=find_corpus(qa), store_dir=ROOT / "bench/out/eval-stores" / qa.name, abstain_threshold=0)
        rag.ingest()
        rows = []  # (answerable, probability or -1 when declined outright, holds a fact)
        for q in questions:
            history = [(h, "") for h in q.get("history") or []]
            a = rag.chat(q["question"], history) if history else rag.ask(q["question"])
            prob = a.sentences[0].support if a.answered and a.sentences else -1.0
            rows.append((q["answerable"], prob, a.answered and has_fact(a.text, q["facts"])))
        n_ans = max(1, sum(r[0] for r in rows))
        n_una = max(1, sum(not r[0] for r in rows))
        cells = []
        for t in STEPS:
            facts = sum(a and pr >= t and ok for a, pr, ok in rows) / n_ans
            false_abst = sum(a and pr < t for a, pr, _ in rows) / n_ans
            false_ans = sum(not a and pr >= t for a, pr, _ in rows) / n_una
            cells.append(f"{facts:.2f} / {false_abst:.2f} / {false_ans:.2f}")
        print(f"| {qa.name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
