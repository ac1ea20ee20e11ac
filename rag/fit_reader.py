"""Fit the reader (`rag.reader`) on the development batches of the question sets, and choose its threshold.

For every development question, the default retrieval runs over the set's corpus; every candidate span of
the top-k passages becomes a row of features, labelled 1 when it contains one of the question's expected
facts (never for an unanswerable question). A logistic model is fitted to the pooled rows, then the
abstention threshold is the probability that maximises, averaged over the sets so that no corpus dominates,
the share of answerable questions whose best span holds a fact plus the share of unanswerable questions
declined. Blind batches are never read here.

Usage:
    python -m rag.fit_reader eval/*.json            # writes rag/reader_weights.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import reader
from .conversation import condense
from .engine import RAG
from .eval import QASet, find_corpus, has_fact
from .question import Question

DEV = "dev"


def development(qa: QASet) -> list[dict]:
    """The questions one may fit on: the ``dev`` batch, or every question of a set without batches."""
    batched = any(q.get("batch") for q in qa.questions)
    return [q for q in qa.questions if not batched or q.get("batch") == DEV]


def rows_for(qa: QASet, stores: Path) -> list[tuple[str, bool, np.ndarray, np.ndarray]]:
    """(id, answerable, features, labels) per development question of ``qa``."""
    rag = RAG(docs_dir=find_corpus(qa), store_dir=stores / qa.name)
    print(f"{qa.name}: {rag.ingest().summary()}", file=sys.stderr)
    answerer = rag.answerer()
    out = []
    for q in development(qa):
        history = [(h, "") for h in q.get("history", [])]
        query = condense(q["question"], history) if history else q["question"]
        retrieval = rag.search(query)
        passages = retrieval.passages
        if answerer.outside(query, passages):  # declined before the reader runs
            continue
        cands = reader.spans(passages)
        if not cands:
            continue
        asked = Question.parse(query)
        unknown = reader.unknown_share(asked.terms, answerer.vocabulary, answerer.idf)
        vector = retrieval.vector if retrieval.vector is not None else rag.embedder.embed_query(query)
        cos = rag.embedder.embed([c.text for c in cands]) @ vector
        x = reader.featurize(asked, cands, passages, answerer.idf, unknown, cos)
        y = np.array([float(q["answerable"] and has_fact(c.text, q["facts"])) for c in cands])
        out.append((q["id"], bool(q["answerable"]), x, y))
    return out


def choose_threshold(by_set: dict[str, list], weights: np.ndarray) -> tuple[float, dict[str, dict]]:
    """The threshold maximising the mean over sets of (answerable right + unanswerable declined) shares."""
    best: tuple[float, float, dict] = (-1.0, 0.5, {})
    for t in np.round(np.arange(0.02, 0.9, 0.01), 2):
        per = {}
        for name, items in by_set.items():
            right = declined = n_ans = n_una = 0
            for _, answerable, x, y in items:
                p = reader.probabilities(x, weights)
                top = int(np.argmax(p))
                if answerable:
                    n_ans += 1
                    right += bool(p[top] >= t and y[top])
                else:
                    n_una += 1
                    declined += bool(p[top] < t)
            per[name] = {"facts": right / max(n_ans, 1), "declined": declined / n_una if n_una else None}
        score = float(np.mean([v["facts"] + (v["declined"] if v["declined"] is not None else 1) for v in per.values()]))
        if score > best[0]:
            best = (score, float(t), per)
    return best[1], best[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.fit_reader", description=__doc__.split("\n")[0])
    p.add_argument("qa_files", type=Path, nargs="+", help="question sets, e.g. eval/*.json")
    p.add_argument("--stores", type=Path, default=Path("bench/out/eval-stores"), help="one store per set")
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic model")
    p.add_argument("--out", type=Path, default=reader.WEIGHTS_FILE)
    args = p.parse_args(argv)
    by_set = {}
    for path in args.qa_files:
        qa = QASet.load(path)
        by_set[qa.name] = rows_for(qa, args.stores)
    items = [i for v in by_set.values() for i in v]
    x = np.vstack([i[2] for i in items])
    y = np.concatenate([i[3] for i in items])
    weights = reader.fit_logistic(x, y, args.l2)
    threshold, per = choose_threshold(by_set, weights)
    report = {
        "features": list(reader.FEATURES),
        "weights": [round(float(w), 4) for w in weights],
        "threshold": threshold,
        "fitted_on": {name: len(v) for name, v in by_set.items()},
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "dev_at_threshold": per,
        "command": "python -m rag.fit_reader " + " ".join(map(str, args.qa_files)),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for f, w in zip(reader.FEATURES, weights, strict=True):
        print(f"{f:>14} {w:+.3f}")
    print(json.dumps({k: report[k] for k in ("threshold", "fitted_on", "rows", "positives", "dev_at_threshold")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
