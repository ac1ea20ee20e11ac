"""Query-time benchmark: retrieval and answer latency in a warm process, against baselines from the same run.

    .venv/bin/python bench/answer_bench.py [--corpus postgresql] [--queries 60] [--llm]

Measures, over questions from eval/debian-reference.json (their topic does not change the cost):
- query embedding: `Embedder.embed_query` against plain `SentenceTransformer.encode` (its per-call overhead);
- dense search (Chroma), BM25 search, and the full fused `retrieve`, at the corpus's chunk count
  (target: retrieve p50 <= 20 ms at 20,000 chunks);
- the extractive answer (`ask`; target p50 <= 150 ms);
- with --llm: the local SmolLM2 backend's first token and tokens/s (target: first token <= 1.5 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, items, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        for item in items:
            t = time.perf_counter()
            fn(item)
            out.append((time.perf_counter() - t) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def row(name: str, values: list[float], base: list[float] | None = None) -> str:
    ratio = f"{statistics.median(values) / statistics.median(base):.2f}" if base else ""
    return f"| {name} | {statistics.median(values):.1f} | {pct(values, 0.95):.1f} | {ratio} |"


def scaled_copy(rag, target: int):
    """A store of ``target`` chunks made of copies of ``rag``'s chunks (sources ``copyN/...``), each vector
    moved by a little noise so the HNSW graph is not full of exact ties. Built once, reused after; no
    embedding is recomputed, so this measures search at scale, not ingest."""
    import numpy as np

    from rag import RAG
    from rag.index.store import FileRecord, now

    out = ROOT / "bench" / "out" / "stores" / f"scaled-{target}"
    scaled = RAG(rag.settings, store_dir=out)
    if scaled.store.open() and scaled.store.count() >= target:
        return scaled
    src = rag.store.chunks.get(include=["embeddings", "documents", "metadatas"])
    rng = np.random.default_rng(0)
    scaled.store.drop()
    scaled.store.prepare(scaled.settings.fingerprint())
    scaled.store.begin_write()
    copies = -(-target // len(src["ids"]))
    for k in range(copies):
        n = min(len(src["ids"]), target - k * len(src["ids"]))
        vectors = np.asarray(src["embeddings"][:n]) + rng.normal(0, 0.01, (n, len(src["embeddings"][0])))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        metas = [{**m, "source": f"copy{k}/{m['source']}"} for m in src["metadatas"][:n]]
        scaled.store.upsert(
            [f"{k}-{i}" for i in src["ids"][:n]], vectors.astype(np.float32), src["documents"][:n], metas
        )
        sources = sorted({m["source"] for m in metas})
        scaled.store.mark([FileRecord(s, "copy", 1, "done", now()) for s in sources])
    scaled.store.end_write()
    print(f"scaled store: {scaled.store.count()} chunks at {out}")
    return scaled


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="debian-reference", help="a corpus of bench/corpora.py")
    p.add_argument("--chunks", type=int, default=20_000, help="scale the store to this many chunks (0: as is)")
    p.add_argument("--queries", type=int, default=60)
    p.add_argument("--llm", action="store_true", help="also time the local SmolLM2 backend")
    p.add_argument("--llm-questions", type=int, default=20, help="questions the local backend answers")
    args = p.parse_args()

    from bench.corpora import prepare
    from rag import RAG

    docs = prepare(args.corpus)
    store = ROOT / "bench" / "out" / "eval-stores" / args.corpus  # shared with rag.eval.run: ingested once
    rag = RAG(docs_dir=docs, store_dir=store)
    t = time.perf_counter()
    report = rag.ingest()
    print(f"store: {report.chunks} chunks from {args.corpus} ({time.perf_counter() - t:.0f}s to bring up to date)")
    if args.chunks > report.chunks:
        rag = scaled_copy(rag, args.chunks)
    questions = [q["question"] for q in json.loads((ROOT / "eval" / "debian-reference.json").read_text())["questions"]]
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]

    rag.ask(questions[0])  # warm: model, keyword index, Chroma's HNSW in memory
    from sentence_transformers import SentenceTransformer

    from rag.index.embedding import resolve_model_path

    st = SentenceTransformer(str(resolve_model_path(rag.settings.embed_model)), device="cpu")
    raw = timed(lambda q: st.encode([q], normalize_embeddings=True), questions)
    ours = timed(rag.embedder.embed_query, questions)
    vectors = {q: rag.embedder.embed_query(q) for q in questions}
    dense = timed(lambda q: rag.store.query(vectors[q], rag.settings.candidates), questions)
    kw = rag.keyword_index()
    bm25 = timed(lambda q: kw.search(q, rag.settings.candidates), questions)
    retrieve = timed(rag.retrieve, questions)
    retrieve_dense = timed(lambda q: rag.search(q, fusion="dense"), questions)
    rag._sentence_cache.clear()
    answer_cold = timed(rag.ask, questions[: len(questions) // 2])
    answer_warm = timed(rag.ask, questions[: len(questions) // 2])

    print(f"\n{rag.store.count()} chunks, {len(questions)} queries, warm process, ms\n")
    print("| stage | p50 | p95 | ratio to baseline (p50) |\n|---|---|---|---|")
    print(row("query embedding: SentenceTransformer.encode (baseline)", raw))
    print(row("query embedding: rag (1 thread)", ours, raw))
    print(row("dense search, Chroma, 30 candidates", dense))
    print(row("BM25 search, 30 candidates", bm25))
    print(row("retrieve, dense only (baseline)", retrieve_dense))
    print(row("retrieve, default (dense + BM25 + RRF)", retrieve, retrieve_dense))
    print(row("extractive answer, end to end (sentence cache cold)", answer_cold))
    print(row("extractive answer, end to end (cache warm)", answer_warm))

    if args.llm:
        from rag.answer.answerer import build_messages
        from rag.engine import LOCAL_PROMPT_CHARS
        from rag.llms.local import LocalLLM

        llm = LocalLLM()
        t = time.perf_counter()
        llm.complete([{"role": "user", "content": "hi"}], max_tokens=1)
        load = time.perf_counter() - t
        firsts, rates = [], []
        for q in questions[: args.llm_questions]:
            messages = build_messages(q, rag.retrieve(q), LOCAL_PROMPT_CHARS)  # the prompt `ask` would send
            t = time.perf_counter()
            n, first = 0, None
            for _ in llm.stream(messages, max_tokens=64):
                n += 1
                first = first or time.perf_counter() - t
            total = time.perf_counter() - t
            firsts.append(first * 1000)
            rates.append((n - 1) / max(total - first, 1e-6))
        print(
            f"\nlocal LLM ({llm.name}): load {load:.2f}s; first token (the prompt ask sends) p50 "
            f"{statistics.median(firsts):.0f} ms, p95 {statistics.quantiles(firsts, n=20)[-1]:.0f} ms "
            f"(max {max(firsts):.0f}, {len(firsts)} questions); {statistics.median(rates):.0f} deltas/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
