"""Fusion constants on the pooled development batches: hit@5 and MRR@10 per corpus for a grid of
(rrf_k, dense weight), beside BM25 alone and dense alone, measured in the same run.

    .venv/bin/python bench/fusion_sweep.py eval/*.json

Each retriever is run once per question (top 30); fused lists are computed from those ranks, exactly as
`rag.retrieval.hybrid` fuses them (weight / (rrf_k + rank), keyword weight 1). Only ``dev`` batches (or sets
without batches) are read: the blind batches stay blind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GRID_K = (5, 10, 20, 40, 60, 100)
GRID_W = (0.5, 0.75, 1.0, 1.5, 2.0)


def fuse(dense: list[str], bm25: list[str], k: int, w: float) -> list[str]:
    score: dict[str, float] = {}
    for rank, cid in enumerate(dense, 1):
        score[cid] = score.get(cid, 0.0) + w / (k + rank)
    for rank, cid in enumerate(bm25, 1):
        score[cid] = score.get(cid, 0.0) + 1.0 / (k + rank)
    best = {cid: min([r for r in (_rank(dense, cid), _rank(bm25, cid)) if r]) for cid in score}
    return sorted(score, key=lambda c: (-round(score[c], 12), best[c], c))


def _rank(ids: list[str], cid: str) -> int | None:
    return ids.index(cid) + 1 if cid in ids else None


def metrics(lists: list[list[str]], relevant: list[set[str]]) -> tuple[float, float]:
    hits, rr = [], []
    for ids, rel in zip(lists, relevant, strict=True):
        r = next((i for i, c in enumerate(ids[:10], 1) if c in rel), None)
        hits.append(float(r is not None and r <= 5))
        rr.append(1.0 / r if r else 0.0)
    return float(np.mean(hits)), float(np.mean(rr))


def main() -> int:
    from rag import RAG
    from rag.eval.fit_reader import development
    from rag.eval.run import QASet, find_corpus, is_relevant

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("qa_files", type=Path, nargs="+")
    args = p.parse_args()
    per_set = {}
    for path in args.qa_files:
        qa = QASet.load(path)
        rag = RAG(docs_dir=find_corpus(qa), store_dir=ROOT / "bench/out/eval-stores" / qa.name)
        rag.ingest()
        runs = []
        for q in development(qa):
            if not q["answerable"] or q.get("history"):
                continue
            d = rag.search(q["question"], k=30, fusion="dense").passages
            b = rag.search(q["question"], k=30, fusion="bm25").passages
            rel = {x.id for x in d + b if is_relevant(x.text, q["evidence"])}
            runs.append(([x.id for x in d], [x.id for x in b], rel))
        per_set[qa.name] = runs
    print("| fusion | " + " | ".join(f"{n} hit@5 / MRR" for n in per_set) + " | worst margin vs best single |")
    print("|---" * (len(per_set) + 2) + "|")
    rows = []
    singles = {
        n: (metrics([r[0] for r in runs], [r[2] for r in runs]), metrics([r[1] for r in runs], [r[2] for r in runs]))
        for n, runs in per_set.items()
    }
    for label, pick in (("dense", 0), ("bm25", 1)):
        cells = [f"{singles[n][pick][0]:.3f} / {singles[n][pick][1]:.3f}" for n in per_set]
        print(f"| {label} | " + " | ".join(cells) + " | |")
    for k in GRID_K:
        for w in GRID_W:
            ms = {
                n: metrics([fuse(r[0], r[1], k, w) for r in runs], [r[2] for r in runs]) for n, runs in per_set.items()
            }
            margin = min(
                min(
                    ms[n][0] - max(singles[n][0][0], singles[n][1][0]),
                    ms[n][1] - max(singles[n][0][1], singles[n][1][1]),
                )
                for n in per_set
            )
            rows.append((margin, k, w, ms))
            cells = [f"{ms[n][0]:.3f} / {ms[n][1]:.3f}" for n in per_set]
            print(f"| rrf k={k} w={w} | " + " | ".join(cells) + f" | {margin:+.3f} |")
    margin, k, w, _ = max(rows, key=lambda r: (r[0], np.mean([v[1] for v in r[3].values()])))
    print(f"\nmost robust: rrf_k={k}, dense weight={w} (worst margin {margin:+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
