"""Fit the reader (`rag.answer.reader`) on the development batches of the question sets, and choose its threshold.

For every development question, the default retrieval runs over the set's corpus and every candidate span
of the top-k passages becomes a row of features, labelled 1 when it contains one of the question's
expected facts (never for an unanswerable question). Then, on the pooled rows:

1. the ranking weights maximise the likelihood of the fact-holding spans under a softmax over each
   answerable question's spans (L2-penalised, L-BFGS);
2. the answer weights are a logistic model of "the best span holds a fact" over the question's best span
   (unanswerable questions are all 0), fitted on held-out scores: each set's ranking scores come from
   weights fitted without that set, so the model learns how far a score can be trusted on a new corpus;
3. the threshold on that probability, and the score gap within which more spans join the answer, are the
   ones that maximise, averaged over the sets so that no corpus dominates, the share of answerable
   questions answered with a fact plus the share of unanswerable questions declined.

Blind batches are never read here.

Usage:
    python -m rag.eval.fit_reader eval/*.json            # writes rag/answer/reader_weights.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.answer import reader
from rag.answer.question import Question
from rag.engine import RAG
from rag.eval.run import QASet, find_corpus, has_fact

DEV = "dev"
# Declining an answerable question is a failure too: the threshold may decline at most this share of them
# (mean over the sets), the bar rag is held to.
MAX_FALSE_ABSTENTION = 0.10


@dataclass
class Item:
    """One development question: its spans' features and labels, and the passages they come from."""

    id: str
    answerable: bool
    rows: np.ndarray
    labels: np.ndarray
    passages: list


def development(qa: QASet) -> list[dict]:
    """The questions one may fit on: the ``dev`` batch, or every question of a set without batches."""
    batched = any(q.get("batch") for q in qa.questions)
    return [q for q in qa.questions if not batched or q.get("batch") == DEV]


def items_for(qa: QASet, stores: Path, mode: str = "same") -> list[Item]:
    rag = RAG(docs_dir=find_corpus(qa), store_dir=stores / qa.name)
    print(f"{qa.name}: {rag.ingest().summary()}", file=sys.stderr)
    index = rag.keyword_index()
    known = index.doc_freq.keys()
    out = []
    for q in development(qa):
        history = [(h, "") for h in q.get("history") or []]
        query = rag.standalone(q["question"], history)
        retrieval = rag.search(query)
        passages = retrieval.passages
        asked = Question.parse(query)
        cands = reader.spans(passages)
        if asked.unknown_names(known) or not cands:  # declined before the reader runs
            continue
        texts = [c.text[: reader.EMBED_CHARS] for c in cands]
        if mode == "xl":
            xl_vector = retrieval.xl_vector
            if xl_vector is None:
                xl_vector = rag.xl_embedder.embed_query(query)
            cos = rag.xl_embedder.embed(texts) @ xl_vector
        else:
            vector = retrieval.vector if retrieval.vector is not None else rag.embedder.embed_query(query)
            cos = rag.embedder.embed(texts) @ vector
        rows = reader.featurize(asked, cands, passages, index.idf, cos)
        labels = np.array([float(q["answerable"] and has_fact(c.text, q["facts"])) for c in cands])
        out.append(Item(q["id"], bool(q["answerable"]), rows, labels, passages))
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (the bias is not penalised).

    Example:
        >>> x = np.array([[1, 0.0], [1, 1.0], [1, 0.1], [1, 0.9]]); y = np.array([0, 1, 0, 1])
        >>> bool(fit_logistic(x, y)[1] > 0)
        True
    """
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_ranking(items: list[Item], l2: float = 1.0) -> np.ndarray:
    """Softmax (listwise) weights: the fact-holding spans of each question should outscore the others."""
    from scipy.optimize import minimize

    groups = [(i.rows, i.labels / i.labels.sum()) for i in items if i.answerable and i.labels.any()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.5 * l2 * float(w @ w), l2 * w
        for x, target in groups:
            s = x @ w
            s = s - s.max()
            p = np.exp(s) / np.exp(s).sum()
            total -= float(target @ np.log(p + 1e-12))
            grad = grad + x.T @ (p - target)
        return total, grad

    return minimize(loss, np.zeros(len(reader.FEATURES)), jac=True, method="L-BFGS-B").x


def outcome(item: Item, scores: np.ndarray, gap: float) -> bool:
    """Would the answer (best span plus spans of its passage within ``gap``) hold a fact? (rows' passage
    rank identifies the passage.)"""
    order = np.argsort(-scores, kind="stable")
    best = order[0]
    rank_col = reader.FEATURES.index("passage_rank")
    chosen = [best] + [
        j
        for j in order[1 : reader.MAX_SPANS]
        if scores[j] >= scores[best] - gap and item.rows[j, rank_col] == item.rows[best, rank_col]
    ]
    return bool(item.labels[chosen].any())


def _or_one(share: float | None) -> float:
    """A share of unanswerable questions declined; a set with none counts as perfect, not as zero."""
    return 1.0 if share is None else share


def choose(
    by_set: dict[str, list[Item]], scores: dict[str, list[np.ndarray]], answer: np.ndarray, dense: str = "dense"
) -> dict:
    """The threshold and extra-span gap maximising the mean over sets of facts + declined shares."""
    best: dict = {"objective": -1.0}
    for gap in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        outcomes = {n: [outcome(i, s, gap) for i, s in zip(v, scores[n], strict=True)] for n, v in by_set.items()}
        probs = {
            n: [
                float(1 / (1 + np.exp(-reader.answer_row(i.rows, s, i.passages, dense) @ answer)))
                for i, s in zip(v, scores[n], strict=True)
            ]
            for n, v in by_set.items()
        }
        for t in np.round(np.arange(0.02, 0.9, 0.01), 2):
            per: dict[str, dict[str, float | None]] = {}
            for n, v in by_set.items():
                ans = [ok and p >= t for i, ok, p in zip(v, outcomes[n], probs[n], strict=True) if i.answerable]
                una = [p < t for i, p in zip(v, probs[n], strict=True) if not i.answerable]
                declined = [p < t for i, p in zip(v, probs[n], strict=True) if i.answerable]
                per[n] = {
                    "facts": float(np.mean(ans)) if ans else 0.0,
                    "declined": float(np.mean(una)) if una else None,
                    "false_abstention": float(np.mean(declined)) if declined else 0.0,
                }
            objective = float(np.mean([(v["facts"] or 0.0) + _or_one(v["declined"]) for v in per.values()]))
            if np.mean([v["false_abstention"] or 0.0 for v in per.values()]) > MAX_FALSE_ABSTENTION:
                continue
            if objective > best["objective"]:
                best = {"objective": objective, "threshold": float(t), "extra_gap": gap, "dev": per}
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.eval.fit_reader", description=__doc__.split("\n")[0])
    p.add_argument("qa_files", type=Path, nargs="+", help="question sets, e.g. eval/*.json")
    p.add_argument("--stores", type=Path, default=Path("bench/out/eval-stores"), help="one store per set")
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty of both models")
    p.add_argument("--out", type=Path, default=reader.WEIGHTS_FILE)
    p.add_argument(
        "--mode",
        choices=("same", "xl"),
        default="same",
        help="same: the reader for English questions over English passages (fit on those sets); xl: the "
        "cross-lingual reader, with the multilingual model's cosines (fit on the Chinese and cross-lingual sets), "
        "written under the key 'xl' of the same file",
    )
    args = p.parse_args(argv)
    dense = "xl" if args.mode == "xl" else "dense"
    by_set = {(qa := QASet.load(path)).name: items_for(qa, args.stores, args.mode) for path in args.qa_files}
    pooled = [i for v in by_set.values() for i in v]
    rank = fit_ranking(pooled, args.l2)
    # Scores each set would get from weights that never saw it: what the answer model must learn to trust.
    held_out = {}
    for name, items in by_set.items():
        w = fit_ranking([i for n, v in by_set.items() if n != name for i in v], args.l2)
        held_out[name] = [i.rows @ w for i in items]
    gap_for_labels = 1.0
    x = np.vstack(
        [
            reader.answer_row(i.rows, s, i.passages, dense)
            for n in by_set
            for i, s in zip(by_set[n], held_out[n], strict=True)
        ]
    )
    y = np.array(
        [float(outcome(i, s, gap_for_labels)) for n in by_set for i, s in zip(by_set[n], held_out[n], strict=True)]
    )
    answer = fit_logistic(x, y, args.l2)
    choice = choose(by_set, {n: [i.rows @ rank for i in v] for n, v in by_set.items()}, answer, dense)
    report = {
        "features": list(reader.FEATURES),
        "rank_weights": [round(float(w), 4) for w in rank],
        "answer_features": list(reader.ANSWER_FEATURES),
        "answer_weights": [round(float(w), 4) for w in answer],
        "threshold": choice["threshold"],
        "extra_gap": choice["extra_gap"],
        "fitted_on": {name: len(v) for name, v in by_set.items()},
        "dev_at_threshold": choice["dev"],
        "command": "python -m rag.eval.fit_reader " + " ".join(map(str, args.qa_files)),
    }
    if args.mode == "xl":  # beside the English reader, which stays as it is
        report = {**json.loads(args.out.read_text()), "xl": report}
    elif args.out.exists() and "xl" in (previous := json.loads(args.out.read_text())):
        report["xl"] = previous["xl"]
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for f, w in zip(reader.FEATURES, rank, strict=True):
        print(f"rank   {f:>14} {w:+.3f}")
    for f, w in zip(reader.ANSWER_FEATURES, answer, strict=True):
        print(f"answer {f:>14} {w:+.3f}")
    print(json.dumps({k: report[k] for k in ("threshold", "extra_gap", "fitted_on", "dev_at_threshold")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
