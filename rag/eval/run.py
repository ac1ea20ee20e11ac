"""Question sets -> retrieval and answer metrics, for the default settings beside single-retriever baselines.

A question set (see ``eval/README.md``) names its corpus folder; the corpus is ingested into its own store
under ``--stores`` (incremental, so a rerun only re-reads the files), then every question is asked of each
configuration: ``default`` (the project's settings), ``bm25`` and ``dense`` (one retriever alone) and
optionally ``rerank``.

Definitions, over the answerable questions unless said otherwise:

* **relevant passage**: its text contains any ``evidence`` phrase, both lower-cased with whitespace
  collapsed. **hit@k**: a relevant passage is in the top k. **MRR@10**: mean of 1/rank of the first
  relevant passage (0 past 10). **nDCG@10**: binary gains, ``DCG = sum(rel_i / log2(i + 1))`` over the top
  10, divided by the ideal DCG of ``min(10, R)`` relevant passages, R = relevant chunks in the whole store.
* **fact match**: a text contains a ``fact`` (case-insensitive, whitespace collapsed) that is not part of a
  longer word or number: the fact ``6`` matches "six (6) consoles" but not "26" or "6th".
* **answer accuracy**: answered, and the answer text matches a fact. **citation precision**: of all
  citations of answered answerable questions pooled (micro-average), the share whose passage text is
  relevant or matches a fact. **abstention accuracy**: share of unanswerable questions with
  ``answered == False``; **false abstentions** / **false answers** count the two ways to get that wrong.

Example:
    python -m rag.eval eval/seeds.json --report-dir docs/eval
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.engine import RAG
from rag.extras import need
from rag.language import simplified

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "bm25": {"fusion": "bm25"},
    "dense": {"fusion": "dense"},
    "rerank": {"rerank": True},
}
DEPTH = 10  # passages retrieved per question: enough for hit@10, MRR@10 and nDCG@10


# --- matching and metrics (pure functions) ---------------------------------------------------------
def normalize(text: str) -> str:
    """``"  Foo\\n  Bar "`` -> ``"foo bar"``: lower case, runs of whitespace made one space."""
    return " ".join(text.lower().split())


def is_relevant(text: str, evidence: list[str]) -> bool:
    """True when ``text`` contains any evidence phrase (case-insensitive, whitespace collapsed)."""
    text = normalize(text)
    return any(normalize(e) in text for e in evidence if e.strip())


def has_fact(text: str, facts: list[str]) -> bool:
    """True when ``text`` contains any fact, not glued to a longer word: ``"6"`` is in "six (6)", not in "26".

    Chinese is written without spaces, so a fact may touch a Chinese character ("有6个" holds "6"), and
    Traditional and Simplified characters count as the same.
    """
    text = simplified(normalize(text))
    for fact in (simplified(normalize(f)) for f in facts):
        if fact:
            left = r"(?<![A-Za-z0-9_])" if fact[0].isascii() and fact[0].isalnum() else ""
            right = r"(?![A-Za-z0-9_])" if fact[-1].isascii() and fact[-1].isalnum() else ""
            if re.search(left + re.escape(fact) + right, text):
                return True
    return False


def first_rank(relevances: list[bool]) -> int | None:
    """1-based rank of the first relevant passage: ``[False, True]`` -> 2; none -> None."""
    return next((i for i, r in enumerate(relevances, 1) if r), None)


def hit_at(rank: int | None, k: int) -> float:
    return float(rank is not None and rank <= k)


def reciprocal_rank(rank: int | None, k: int = DEPTH) -> float:
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at(relevances: list[bool], n_relevant: int, k: int = DEPTH) -> float:
    """Binary nDCG@k: ``[False, True]`` with 1 relevant in the store -> (1/log2 3) / (1/log2 2) = 0.631."""
    dcg = sum(1 / math.log2(i + 1) for i, r in enumerate(relevances[:k], 1) if r)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(k, max(n_relevant, sum(relevances[:k]))) + 1))
    return dcg / ideal if ideal else 0.0


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))} if ms else {}


def score_answer(answer, q: dict) -> dict:
    """One `Answer` against one question: answered, correct, and its citations that hold evidence."""
    ok = [is_relevant(c.text, q["evidence"]) or has_fact(c.text, q["facts"]) for c in answer.citations]
    return {
        "answered": bool(answer.answered),
        "correct": bool(answer.answered and q["answerable"] and has_fact(answer.text, q["facts"])),
        "citations": len(ok),
        "citations_ok": sum(ok),
        "text": answer.text,
    }


def answer_metrics(rows: list[dict], questions: list[dict]) -> dict:
    """Aggregate `score_answer` rows (with ``ms``) into the answer metrics defined in the module docstring."""
    ans = [r for r, q in zip(rows, questions, strict=True) if q["answerable"]]
    una = [r for r, q in zip(rows, questions, strict=True) if not q["answerable"]]
    cited = [r for r in ans if r["answered"]]
    n_cit = sum(r["citations"] for r in cited)
    return {
        "accuracy": sum(r["correct"] for r in ans) / len(ans) if ans else 0.0,
        "citation_precision": sum(r["citations_ok"] for r in cited) / n_cit if n_cit else 0.0,
        "abstention_accuracy": sum(not r["answered"] for r in una) / len(una) if una else 0.0,
        "false_abstentions": sum(not r["answered"] for r in ans),
        "false_answers": sum(r["answered"] for r in una),
        **percentiles([r["ms"] for r in rows]),
    }


# --- running -----------------------------------------------------------------------------------------
@dataclass
class QASet:
    name: str
    corpus: Path
    setup: str
    questions: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> QASet:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["name"], Path(data["corpus"]), data.get("setup", ""), data["questions"])


def find_corpus(qa: QASet) -> Path:
    """The corpus folder; one under ``bench/corpora/`` is prepared by running ``bench/corpora.py`` when missing
    (a script of the repository, run, never imported: the package does not depend on bench/)."""
    if qa.corpus.is_dir() and any(qa.corpus.iterdir()):
        return qa.corpus
    why = "missing"
    script = qa.corpus.parent.parent / "corpora.py"
    if qa.corpus.parts[-3:-1] == ("bench", "corpora") and script.is_file():
        done = subprocess.run([sys.executable, str(script), qa.corpus.name], capture_output=True, text=True)
        if done.returncode == 0 and qa.corpus.is_dir() and any(qa.corpus.iterdir()):
            return qa.corpus
        # no apt, no sudo, no package: the hint says how
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = f"missing and could not be prepared ({lines[-1] if lines else f'exit {done.returncode}'})"
    raise FileNotFoundError(f"corpus folder {qa.corpus} is {why}; get it with: {qa.setup}")


def run(qa: QASet, configs: list[str], *, stores: Path, answers: bool = True, **overrides) -> dict:
    """Ingest the corpus, then retrieve (and answer) every question under every configuration.

    ``overrides`` are `Settings` fields applied to every configuration; ones that change what is stored
    (chunking, embedding model) get a store of their own, so the default store is never rebuilt.
    """
    stored = Settings(**{k: v for k, v in overrides.items() if k in ("chunk_size", "chunk_overlap", "embed_model")})
    own = stored.fingerprint() != Settings().fingerprint()
    engine = RAG(
        docs_dir=find_corpus(qa),
        store_dir=stores / f"{qa.name}{'-' + stored.fingerprint() if own else ''}",
        **overrides,
    )
    print(f"{qa.name}: {engine.ingest().summary()}", file=sys.stderr)
    chunks = [normalize(text) for _, _, text in engine.store.all_chunks()]
    details: list[dict[str, Any]] = [
        {k: q.get(k) for k in ("id", "question", "answerable", "facts", "evidence", "history")}
        | {"batch": q.get("batch")}
        for q in qa.questions
    ]
    for d in details:  # R of nDCG; 0 means no chunk can be relevant (an extraction or chunking problem)
        d.update(relevant_in_store=sum(any(normalize(e) in c for e in d["evidence"]) for c in chunks))
        d.update(rank={}, top={}, answer={})
    answerable = [d for d in details if d["answerable"]]
    result: dict[str, Any] = {
        "name": qa.name,
        "corpus": str(qa.corpus),
        "chunks": len(chunks),
        "overrides": {k: str(v) for k, v in overrides.items()},
        "questions": len(details),
        "answerable": len(answerable),
        "retrieval": {},
        "answers": {},
        "details": details,
    }
    for name in configs:
        rag = engine.with_settings(**CONFIGS[name])  # one model, loaded once for all configurations
        result["retrieval"][name] = retrieval_pass(rag, name, answerable)
        if answers and name in ("default", "bm25", "dense"):  # the same answerer over each retriever
            result["answers"][name] = answer_pass(rag, name, details)
    result["by_batch"] = by_batch(details)
    return result


def bootstrap(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values`` (questions resampled with replacement).

    Example:
        >>> bootstrap([1.0, 1.0, 1.0])
        (1.0, 1.0)
    """
    if not values:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = rng.choice(np.asarray(values, dtype=float), size=(n, len(values))).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _with_ci(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)) if values else 0.0, "ci": bootstrap(values), "n": len(values)}


def by_batch(details: list[dict], k: int = 5) -> dict[str, dict[str, dict]]:
    """Metrics per ``batch`` of questions (the ones a change may be developed on, and ones written blind),
    per configuration, each with its 95% bootstrap interval: hit@k and MRR@10 over the batch's answerable
    questions, facts (answer accuracy), citation precision, correct and false abstention. A set without
    batches is one batch, ``all``."""
    batches = sorted({str(d.get("batch") or "all") for d in details})
    out: dict[str, dict[str, dict]] = {}
    for b in batches:
        group = [d for d in details if str(d.get("batch") or "all") == b]
        answerable = [d for d in group if d["answerable"]]
        unanswerable = [d for d in group if not d["answerable"]]
        for config in group[0]["rank"]:  # a batch is named by its questions, so it has at least one
            ranks = [d["rank"].get(config) for d in answerable]
            row: dict[str, Any] = {
                f"hit@{k}": _with_ci([hit_at(r, k) for r in ranks]),
                "mrr@10": _with_ci([reciprocal_rank(r) for r in ranks]),
            }
            if all(config in d["answer"] for d in group):
                rows = {d["id"]: d["answer"][config] for d in group}
                cited = [rows[d["id"]] for d in answerable if rows[d["id"]]["answered"]]
                per_citation = [1.0] * sum(r["citations_ok"] for r in cited)
                per_citation += [0.0] * (sum(r["citations"] for r in cited) - len(per_citation))
                row |= {
                    "facts": _with_ci([float(rows[d["id"]]["correct"]) for d in answerable]),
                    "citation_precision": _with_ci(per_citation),
                    "abstention": _with_ci([float(not rows[d["id"]]["answered"]) for d in unanswerable]),
                    "false_abstention": _with_ci([float(not rows[d["id"]]["answered"]) for d in answerable]),
                }
            out.setdefault(b, {})[config] = row
    return out


REGRESSION_METRICS = ("hit@5", "mrr@10", "facts", "citation_precision", "abstention")


def baseline_of(res: dict) -> dict[str, dict[str, dict]]:
    """The default configuration's metrics per batch, with their intervals: what a later run must not fall
    below (see `regressions`)."""
    return {
        batch: {m: by_config["default"][m] for m in REGRESSION_METRICS if m in by_config["default"]}
        for batch, by_config in res.get("by_batch", {}).items()
        if "default" in by_config
    }


def regressions(res: dict, baseline: dict[str, dict[str, dict]]) -> list[str]:
    """Metrics of ``res`` (default configuration) below the lower end of the baseline's 95% interval: a drop
    larger than the question sample explains. Metrics measured on no question are skipped."""
    out = []
    for batch, metrics in baseline.items():
        now = res.get("by_batch", {}).get(batch, {}).get("default", {})
        for name, base in metrics.items():
            if name in now and now[name]["n"] and base["n"] and now[name]["mean"] < base["ci"][0] - 1e-9:
                low, high = base["ci"]
                out.append(
                    f"{res['name']} {batch} {name}: {now[name]['mean']:.3f}, below the baseline "
                    f"{base['mean']:.3f} [{low:.2f}, {high:.2f}]"
                )
    return out


def retrieval_pass(rag: RAG, name: str, questions: list[dict]) -> dict:
    """Search every answerable question as `RAG.ask` and `RAG.chat` would (a follow-up with its history);
    record its first relevant rank in ``question["rank"][name]``."""
    if questions:
        rag.search(questions[0]["question"], k=DEPTH)  # warm up: loading the model is not latency
    rows, ms = [], []
    for q in questions:
        t = time.perf_counter()
        # what `ask`/`chat` search for: a follow-up made standalone with its conversation, a typo corrected
        query = rag.standalone(q["question"], [(h, "") for h in q.get("history") or []])
        passages = rag.search(query, k=DEPTH, fusion=rag.settings.fusion).passages
        ms.append((time.perf_counter() - t) * 1000)
        rels = [is_relevant(p.text, q["evidence"]) for p in passages]
        rank = q["rank"][name] = first_rank(rels)
        q["top"][name] = f"{passages[0].location}: {passages[0].text[:150]}" if passages else None
        ndcg = ndcg_at(rels, q["relevant_in_store"])
        rows.append([hit_at(rank, 1), hit_at(rank, 5), hit_at(rank, 10), reciprocal_rank(rank), ndcg])
    means = np.mean(rows, axis=0) if rows else np.zeros(5)
    keys = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10")
    return {**dict(zip(keys, map(float, means), strict=True)), **percentiles(ms)}


def answer_pass(rag: RAG, name: str, questions: list[dict]) -> dict:
    """Ask every question; record `score_answer` in ``question["answer"][name]``."""
    rows = []
    for q in questions:
        t = time.perf_counter()
        history = [(h, "") for h in q.get("history") or []]  # a follow-up is asked within its conversation
        row = score_answer(rag.chat(q["question"], history) if history else rag.ask(q["question"]), q)
        row["ms"] = (time.perf_counter() - t) * 1000
        q["answer"][name] = row
        rows.append(row)
    return answer_metrics(rows, questions)


# --- reporting ---------------------------------------------------------------------------------------
def _table(by_config: dict[str, dict], keys: list[str], latency: bool = True) -> list[str]:
    """One markdown row per configuration: the ``keys`` (floats to 3 places), then latency in ms."""
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    ms = lambda m: [f"{m.get('p50_ms', 0):.0f}", f"{m.get('p95_ms', 0):.0f}"] if latency else []  # noqa: E731
    rows = [[c, *(fmt(m[x]) for x in keys), *ms(m)] for c, m in by_config.items()]
    head = ["config", *keys, *(["p50 ms", "p95 ms"] if latency else [])]
    return ["| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows]] + [""]


def _ci_table(by_config: dict[str, dict], keys: list[str]) -> list[str]:
    """One markdown row per configuration: each metric as ``mean [low, high]`` (n)."""
    cell = lambda m: f"{m['mean']:.2f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}] ({m['n']})" if m["n"] else "–"  # noqa: E731
    rows = [[c, *(cell(m[x]) if x in m else "–" for x in keys)] for c, m in by_config.items()]
    head = ["config", *keys]
    return ["| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows]] + [""]


def to_markdown(res: dict, k: int = 5, plot: str = "") -> str:
    """The human report: both tables, then the worst misses of the first configuration (``default``)."""
    first = next(iter(res["retrieval"]))
    lines = [f"# Evaluation: {res['name']}", ""]
    lines += [f"{res['questions']} questions ({res['answerable']} answerable) over `{res['corpus']}`"]
    lines += [f"({res['chunks']} chunks); settings overrides: {res['overrides'] or 'none'}.", ""]
    lines += [f"Reproduce: `{res['command']}`", ""] if res.get("command") else []
    if unreachable := [d["id"] for d in res["details"] if d["answerable"] and not d["relevant_in_store"]]:
        lines += [f"No chunk contains the evidence of: {', '.join(unreachable)}.", ""]
    lines += ["## Retrieval", "", *_table(res["retrieval"], ["hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10"])]
    lines += [f"![retrieval metrics per configuration]({plot})", ""] if plot else []
    if res["answers"]:
        keys = ["accuracy", "citation_precision", "abstention_accuracy", "false_abstentions", "false_answers"]
        lines += ["## Answers", "", *_table(res["answers"], keys)]

    for batch, by_config in res.get("by_batch", {}).items():
        n = sum(1 for d in res["details"] if str(d.get("batch") or "all") == batch)
        keys = list(next(iter(by_config.values())))
        lines += [f"## Batch `{batch}` ({n} questions; 95% bootstrap intervals)", "", *_ci_table(by_config, keys)]

    missed = [d for d in res["details"] if d["answerable"] and not hit_at(d["rank"][first], k)]
    missed.sort(key=lambda d: -(d["rank"][first] or DEPTH + 1))  # never found first, then found late
    lines += [f"## Worst retrieval misses ({first}: nothing relevant in the top {k}; {len(missed)} in all)", ""]
    for d in missed[:10]:
        ranks = ", ".join(f"{c} {r or f'>{DEPTH}'}" for c, r in d["rank"].items())
        lines += [f"- **{d['id']}** {d['question']}", f"  - expected: “{d['evidence'][0]}” (ranks: {ranks})"]
        lines += [f"  - got: {' '.join((d['top'][first] or '').split())}"]
    wrong = [d for d in res["details"] if first in d["answer"] and not _answer_ok(d, d["answer"][first])]
    lines += ["", f"## Wrong answers ({first}; {len(wrong)} in all)", ""] if wrong else []
    for d in wrong[:10]:
        got = " ".join(d["answer"][first]["text"].split())[:200]
        lines += [f"- **{d['id']}** {d['question']}", f"  - expected: {d['facts'] or 'abstain'}", f"  - got: {got}"]
    return "\n".join(lines).strip() + "\n"


def _answer_ok(d: dict, row: dict) -> bool:
    return row["correct"] if d["answerable"] else not row["answered"]


def plot(res: dict, path: Path, k: int = 5) -> None:
    """Grouped bars: hit@k, MRR@10 and nDCG@10, one colour per configuration."""
    matplotlib = need("matplotlib", "the evaluation report's plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [f"hit@{k}", "mrr@10", "ndcg@10"]
    configs = list(res["retrieval"])
    width = 0.8 / max(len(configs), 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, c in enumerate(configs):
        vals = [res["retrieval"][c][m] for m in metrics]
        bars = ax.bar([j + i * width for j in range(len(metrics))], vals, width, label=c)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks([j + width * (len(configs) - 1) / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1.18)  # headroom for the legend above bars that reach 1.0
    ax.set_title(f"{res['name']}: {res['answerable']} answerable questions, {res['chunks']} chunks")
    ax.legend(loc="upper center", ncol=len(configs), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.eval", description="Measure retrieval and answers.")
    p.add_argument("qa_file", type=Path, help="question set, e.g. eval/seeds.json")
    p.add_argument("--out", type=Path, default=Path("bench/out/eval"), help="folder for NAME.md/.json/.png")
    p.add_argument("--report-dir", type=Path, help="also write NAME.md and NAME.png here (e.g. docs/eval)")
    p.add_argument("--stores", type=Path, default=Path("bench/out/eval-stores"), help="one store per set")
    p.add_argument("--k", type=int, default=5, choices=[1, 5, 10], help="hit@k plotted and used for misses")
    p.add_argument("--configs", default="default,bm25,dense", help=f"comma-separated, of {', '.join(CONFIGS)}")
    p.add_argument("--no-answers", action="store_true", help="retrieval only")
    p.add_argument("--batch", help="only the questions of this batch (e.g. dev, while tuning: blind stays blind)")
    p.add_argument("--baseline", type=Path, help="record this run's metrics as the set's baseline in this JSON file")
    p.add_argument("--check", type=Path, help="exit 1 if a metric falls below the baseline's interval in this file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Settings override, repeatable")
    args = p.parse_args(argv)
    configs = args.configs.split(",")
    if unknown := set(configs) - set(CONFIGS):
        p.error(f"unknown configuration(s) {sorted(unknown)}; known: {', '.join(CONFIGS)}")
    qa = QASet.load(args.qa_file)
    if args.batch:
        qa.questions = [q for q in qa.questions if str(q.get("batch") or "all") == args.batch]
    try:
        res = run(
            qa, configs, stores=args.stores, answers=not args.no_answers, **dict(s.split("=", 1) for s in args.set)
        )
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    res["command"] = " ".join(["python -m rag.eval", *(sys.argv[1:] if argv is None else argv)])
    for folder in filter(None, [args.out, args.report_dir]):
        folder.mkdir(parents=True, exist_ok=True)
        plot(res, folder / f"{qa.name}.png", args.k)
        (folder / f"{qa.name}.md").write_text(to_markdown(res, args.k, f"{qa.name}.png"))
    (args.out / f"{qa.name}.json").write_text(json.dumps(res, indent=1) + "\n")
    print(to_markdown(res, args.k))
    if args.baseline:
        saved = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
        saved[qa.name] = baseline_of(res)
        args.baseline.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    if args.check:
        found = regressions(res, json.loads(args.check.read_text()).get(qa.name, {}))
        for line in found:
            print(f"regression: {line}", file=sys.stderr)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
