"""Whole-document questions (rag/answer/overview.py): routing, summaries and listings, beside the ordinary answer.

* **Routing**: the router's accuracy over the held-back phrasings of ``eval/overview-intents.json`` (never
  fitted on) and the questions of the blind batches of the ordinary question sets (all labelled ordinary),
  its **false-route rate** (ordinary questions sent to a whole-document answer) and its recall of the
  whole-document intents.
* **Summaries** (``eval/overview.json``, kind ``summary``): **coverage**, the share of the reference points
  (written by a reader of the document; a point is a list of alternative phrases) that the answer's text
  contains; **citation precision**, the share of citations whose passage is of the document asked about and
  holds the quoted sentence; **routed**, the share answered as a summary of the right document.
* **Listings** (kind ``mention``): **recall** and **precision** of the files listed against the files whose
  text really holds the term; **citation precision**, citations whose passage holds the term.
* **Ambiguous** (kind ``ambiguous``): not answered, and every expected candidate named.

The baseline is the ordinary top-k answer to the same question (routing off); for a listing its files are
the sources it cites. Every mean has its 95% bootstrap interval (questions resampled).

Usage:
    python bench/overview_eval.py                 # both batches, written to bench/out/overview.md
    python bench/overview_eval.py --batch dev     # while developing: the blind batch stays blind
    python bench/overview_eval.py --batch dev --no-router   # the router's blind check kept for the end
    python bench/overview_eval.py --fit           # refit the router (rag/answer/overview_weights.json) first
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import RAG  # noqa: E402
from rag.answer import overview  # noqa: E402
from rag.eval.run import bootstrap  # noqa: E402


def ci(values: list[float]) -> str:
    if not values:
        return "–"
    low, high = bootstrap(values)
    return f"{np.mean(values):.3f} [{low:.2f}, {high:.2f}] (n={len(values)})"


def held_back(path: Path) -> tuple[list[str], list[int]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    texts, labels = [], []
    docs, topics = data["docs"], data["topics"]
    for label, templates in data["templates"].items():
        for i, t in enumerate(templates):
            texts.append(t.format(doc=docs[i % len(docs)], topic=topics[(5 * i) % len(topics)]))
            labels.append(overview.INTENTS.index(label))
    return texts, labels


def corpus_titles(corpus: Path) -> dict[str, str]:
    """Each document's title as `overview.titles` reads it from a store (its text's first line), read from the
    files without an ingest; {} when the corpus is not here."""
    from rag.config import Settings
    from rag.ingest.loaders import load
    from rag.ingest.pipeline import scan

    if not corpus.is_dir():
        return {}
    max_bytes = int(Settings().max_file_mb * 2**20)
    out = {}
    for entry in scan(corpus, max_bytes)[0]:
        try:
            text = load(entry.path, entry.rel, max_bytes).text
        except Exception:  # noqa: BLE001 - a file the ingest would report as failed has no title
            continue
        out[entry.rel] = text.strip().split("\n", 1)[0][:100]
    return out


def ordinary_with_corpus(eval_dir: Path, batches: tuple[str, ...]) -> list[tuple[str, Path | None]]:
    """The ordinary questions of ``batches`` beside their corpus folder (as `overview.ordinary_questions`)."""
    out = []
    for path in sorted(eval_dir.glob("*.json")):
        if path.name.startswith("overview") or path.name == "baseline.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        corpus = ROOT / data["corpus"] if data.get("corpus") else None
        out += [(q["question"], corpus) for q in data.get("questions", []) if str(q.get("batch") or "dev") in batches]
    return out


def routing(rag: RAG, eval_dir: Path) -> dict[str, str]:
    """Held-back phrasings (no documents to name), and the blind batches' ordinary questions each read with
    its own corpus's titles, as `overview.route` reads a question over a store."""
    texts, labels = held_back(eval_dir / "overview-intents.json")
    shelves: list[dict[str, str] | None] = [None] * len(texts)
    ordinary = ordinary_with_corpus(eval_dir, ("blind", "blind2"))
    assert sorted(q for q, _ in ordinary) == sorted(
        q for b in ("blind", "blind2") for q in overview.ordinary_questions(eval_dir, b)
    )
    cache: dict[Path, dict[str, str]] = {}
    for _, corpus in ordinary:
        if corpus is not None and corpus not in cache:
            cache[corpus] = corpus_titles(corpus)
    with_titles = sum(bool(corpus and cache[corpus]) for _, corpus in ordinary)
    print(f"ordinary questions read with their corpus's titles: {with_titles} of {len(ordinary)}", file=sys.stderr)
    texts += [q for q, _ in ordinary]
    labels += [0] * len(ordinary)
    shelves += [cache.get(corpus) or None if corpus else None for _, corpus in ordinary]
    router = rag.router()

    def read(text: str, shelf: dict[str, str] | None) -> int:
        return overview.INTENTS.index(router.intent(text, (lambda: shelf) if shelf else None)[0])

    predicted = [read(t, k) for t, k in zip(texts, shelves, strict=True)]
    right = [float(p == y) for p, y in zip(predicted, labels, strict=True)]
    routed = [float(p != 0) for p, y in zip(predicted, labels, strict=True) if y == 0]
    recall = [float(p == y) for p, y in zip(predicted, labels, strict=True) if y != 0]
    misses = [t for t, p, y in zip(texts, predicted, labels, strict=True) if y == 0 and p != 0]
    print("false routes:", misses, file=sys.stderr)
    as_asked = [float(router.intent(t)[0] != "question") for t, y in zip(texts, labels, strict=True) if y == 0]
    return {
        "accuracy": ci(right),
        "false-route rate": ci(routed),
        "false-route rate, read without the titles": ci(as_asked),
        "whole-document recall": ci(recall),
    }


def mentions(text: str, term: str) -> bool:
    return bool(re.search(r"(?<![a-z0-9])" + re.escape(term.lower()) + r"s?(?![a-z0-9])", text.lower()))


def score(q: dict, a, document_texts: dict[str, str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    if q["kind"] == "summary":
        text = a.text.lower()
        out["coverage"] = [float(np.mean([any(alt.lower() in text for alt in p) for p in q["points"]]))]
        out["citation precision"] = [float(c.source == q["document"] and c.quote in c.text) for c in a.citations]
        out["routed"] = [float(a.intent == "summary" and all(c.source == q["document"] for c in a.citations))]
    elif q["kind"] == "mention":
        listed = {c.source for c in a.citations} if a.answered else set()
        truth = set(q["files"])
        if truth:
            out["recall"] = [len(listed & truth) / len(truth)]
        out["precision"] = [len(listed & truth) / len(listed) if listed else float(not truth)]
        out["citation precision"] = [float(mentions(c.text, q["term"])) for c in a.citations]
        out["routed"] = [float(a.intent == "mention")]
    else:
        said = not a.answered and all(c in a.text for c in q["candidates"])
        out["ambiguity said"] = [float(said)]
    return out


def run(batch: str | None, stores: Path, router: bool = True) -> str:
    data = json.loads((ROOT / "eval" / "overview.json").read_text(encoding="utf-8"))
    questions = [q for q in data["questions"] if batch is None or q["batch"] == batch]
    results: dict[tuple[str, str, str], list[float]] = {}  # (kind, metric, system) -> values
    rag = None
    for name, corpus in data["corpora"].items():
        asked = [q for q in questions if q["corpus"] == name]
        if not asked:
            continue
        rag = RAG(docs_dir=ROOT / corpus["corpus"], store_dir=stores / f"overview-{name}", crosslingual="off")
        print(f"{name}: {rag.ingest().summary()}", file=sys.stderr)
        for q in asked:
            for system in ("overview", "baseline"):
                if system == "baseline":
                    with mock.patch.object(overview, "route", lambda *a, **k: overview.Routed("question")):
                        a = rag.ask(q["question"])
                else:
                    a = rag.ask(q["question"])
                for metric, values in score(q, a, {}).items():
                    results.setdefault((q["kind"], metric, system), []).extend(values)
                if system == "overview":
                    print(f"{q['id']} {a.intent} {a.answered}: {a.text[:160]!r}", file=sys.stderr)
    assert rag is not None, "no question in this batch"
    lines = [f"Batch: {batch or 'all'}. Mean [95% bootstrap interval] (n).", ""]
    lines += [
        "| question kind | metric | whole-document answer | baseline: ordinary top-k answer |",
        "|---|---|---|---|",
    ]
    for kind, metric in dict.fromkeys((k, m) for k, m, _ in results):
        lines.append(
            f"| {kind} | {metric} | {ci(results.get((kind, metric, 'overview'), []))} | "
            f"{ci(results.get((kind, metric, 'baseline'), []))} |"
        )
    if router:
        lines += ["", "Router (held-back phrasings + blind-batch ordinary questions):", ""]
        lines += [f"- {k}: {v}" for k, v in routing(rag, ROOT / "eval").items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", choices=["dev", "blind"], help="only this batch of eval/overview.json")
    p.add_argument("--stores", type=Path, default=ROOT / "bench" / "out" / "eval-stores")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "overview.md")
    p.add_argument("--fit", action="store_true", help="refit the router from rag/answer/overview_intents.json first")
    p.add_argument(
        "--no-router",
        action="store_true",
        help="skip the router check (its blind-batch questions are looked at once, at the end)",
    )
    args = p.parse_args(argv)
    if args.fit:
        from rag.index.embedding import Embedder

        embedder = Embedder()
        shelves: dict[str, dict[str, str]] = {}

        def titles_of(corpus: str) -> dict[str, str]:
            if corpus not in shelves:
                shelves[corpus] = corpus_titles(ROOT / corpus)
            return shelves[corpus]

        out = overview.fit(lambda t: embedder.embed(t, role="query"), ROOT / "eval", titles_of=titles_of)
        print(f"router fitted on {out['trained_on']} questions", file=sys.stderr)
    report = run(args.batch, args.stores, router=not args.no_router)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
