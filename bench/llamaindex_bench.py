"""Before/after benchmark of a change, on the same machine in one run: cold start, ingest throughput, query
latency, each measured in fresh processes of two source trees (e.g. the commit before the llama-index work
and after it), interleaved so that both see the same load.

    .venv/bin/python bench/llamaindex_bench.py --before 68594b1 --after HEAD --corpus PATH [--rounds 3]

Each tree is exported with ``git archive`` into a temporary folder and run with ``PYTHONPATH`` pointing at it:

- **cold start**: a fresh process: ``import rag`` (s), then `RAG.ask` of one question on a store that tree
  ingested (s to the first answer, import included);
- **ingest**: a full ingest of ``--corpus`` into a fresh store (chunks/s, wall time of ``RAG.ingest``);
- **query**: `RAG.ask` p50 over a few questions in the warm process (the first answer excluded);
- **openai backend**: the first `RAG.ask` through the openai backend against a local echoing server
  (tests/llm_servers.py) in that process (s; it loads the HTTP client stack), then its p50 (ms);
- **upgrade** (``--old-store``): the after tree's one-time metadata-only layout upgrade of a copy of an
  existing store (seconds, records), by its next ingest.

Prints a markdown table; writes nothing outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [  # generic questions about a Linux FAQ: their topic does not change the cost
    "How do I install a package?",
    "What is a stable release?",
    "Where can I get the source code?",
    "How do I report a bug?",
    "What architectures are supported?",
    "How do I upgrade to a new release?",
]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import rag
t_import = time.perf_counter() - t0
from rag import RAG
mode, docs, store = sys.argv[1], sys.argv[2], sys.argv[3]
questions = json.loads(sys.argv[4])
r = RAG(docs_dir=docs, store_dir=store, crosslingual="off")
out = {"import_s": t_import}
if mode == "ingest":
    t = time.perf_counter(); rep = r.ingest(); dt = time.perf_counter() - t
    out.update(ingest_s=dt, chunks=rep.embedded, chunks_per_s=rep.embedded / dt)
elif mode == "upgrade":
    t = time.perf_counter(); rep = r.ingest(); dt = time.perf_counter() - t
    out.update(upgrade_s=dt, embedded=rep.embedded, records=rep.chunks)
else:
    r.ask(questions[0]); out["first_answer_s"] = time.perf_counter() - t0
    times = []
    for q in questions[1:] * 3:
        t = time.perf_counter(); r.ask(q); times.append((time.perf_counter() - t) * 1000)
    out["ask_p50_ms"] = sorted(times)[len(times) // 2]
    out["llama_index_after_extractive"] = any(m.startswith("llama_index") for m in sys.modules)
    from tests.llm_servers import ChatServer  # an OpenAI-compatible server on 127.0.0.1 that echoes
    with ChatServer("openai") as server:
        model = r.with_settings(llm="openai", llm_base_url=server.url, llm_model="m")
        t = time.perf_counter(); model.ask(questions[0]); out["first_openai_answer_s"] = time.perf_counter() - t
        times = []
        for q in questions[1:] * 2:
            t = time.perf_counter(); model.ask(q); times.append((time.perf_counter() - t) * 1000)
        out["openai_ask_p50_ms"] = sorted(times)[len(times) // 2]
out["llama_index_imported"] = any(m.startswith("llama_index") for m in sys.modules)
print(json.dumps(out))
"""


def export(rev: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def child(tree: Path, mode: str, docs: Path, store: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(PYTHONPATH=str(tree), HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    args = [sys.executable, "-c", CHILD, mode, str(docs), str(store), json.dumps(QUESTIONS)]
    out = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{tree} {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", default="68594b1")
    p.add_argument("--after", default="HEAD")
    p.add_argument("--corpus", type=Path, required=True, help="a folder of documents")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--old-store", type=Path, help="a store written by --before, to time the layout upgrade")
    p.add_argument("--old-docs", type=Path, help="its documents folder")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="li-bench-"))
    try:
        trees = {name: export(rev, tmp / name) for name, rev in (("before", args.before), ("after", args.after))}
        docs = shutil.copytree(args.corpus, tmp / "docs")
        results: dict[str, list[dict]] = {"before": [], "after": []}
        for i in range(args.rounds):
            for name, tree in trees.items():
                store = tmp / f"store-{name}-{i}"
                row = child(tree, "ingest", docs, store)
                row.update(child(tree, "ask", docs, store))
                results[name].append(row)
                print(name, i, json.dumps(row), file=sys.stderr, flush=True)
        keys = ["import_s", "first_answer_s", "chunks_per_s", "ingest_s", "ask_p50_ms"]
        keys += ["first_openai_answer_s", "openai_ask_p50_ms"]
        print(f"| median of {args.rounds} | before ({args.before}) | after ({args.after}) |\n|---|---|---|")
        for key in keys:
            b, a = (statistics.median(r[key] for r in results[n]) for n in ("before", "after"))
            print(f"| {key} | {b:.3g} | {a:.3g} |")
        print(f"| chunks | {results['before'][0]['chunks']} | {results['after'][0]['chunks']} |")
        for n in ("before", "after"):
            if any(r["llama_index_after_extractive"] for r in results[n]):
                print(f"\n{n}: llama_index was imported by import rag + extractive answers")
        if args.old_store:
            store = shutil.copytree(args.old_store, tmp / "old-store")
            up = child(trees["after"], "upgrade", args.old_docs or docs, store)
            again = child(trees["after"], "upgrade", args.old_docs or docs, store)
            print(
                f"\nlayout upgrade of {args.old_store.name} ({up['records']} records): first ingest "
                f"{up['upgrade_s']:.2f} s ({up['embedded']} embedded), next {again['upgrade_s']:.2f} s"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
