"""Ingest benchmark: throughput against raw encoding, the no-change rerun, and peak memory.

Prints a markdown table (``--json`` also writes ``bench/out/ingest.json``); writes nothing outside
``bench/out/``. Each number comes with its baseline measured in the same run:

1. **Throughput** (``--corpus``, default debian-reference): a full ingest into a fresh store, in chunks/s,
   against ``SentenceTransformer.encode`` of exactly the texts that ingest embedded (each stored chunk under
   its section heading, `rag.ingest.chunking.embedding_text`), same batch size,
   all models warm; and against ``.encode`` of the model object the ingest itself used (one
   `rag.index.embedding.Embedder`), which isolates the pipeline's overhead. Interleaved, best of ``--rounds``.
   The ingest's time is split into stages by timers patched into this process only.
2. **Rerun** (``--big-corpus``, default postgresql, ~1,170 files): a first full ingest as a fresh
   ``python ingest.py`` process, then the same command again with nothing changed (wall time, Python and
   imports included), then ``RAG(...).ingest()`` twice in this process (the second call is the number).
3. **Rebuild** (``--corpus``): what a new `CHUNKER_VERSION` (a rag upgrade that reads documents
   differently) costs a store: a full ingest into a fresh store, then a ``--reset`` rebuild (every chunk
   embedded again: what a version change did before vectors were reused; the baseline), then a rebuild
   forced by a bumped version in this process (chunks whose text is unchanged keep their vectors). The same
   three steps on the seed interview with the cross-lingual index on, where the slow multilingual model is
   what a rebuild redoes.
4. **Peak memory**: max RSS of that first full-ingest process, against a process that only imports rag,
   loads the embedding model and embeds one sentence (and one that embeds a single full batch). All read
   as ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in a small launcher process (see `run_child`: not in this
   one, whose own size would leak into it).

Usage:
    .venv/bin/python bench/ingest_bench.py [--corpus debian-reference] [--big-corpus postgresql] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
sys.path.insert(0, str(REPO))  # `rag` and `bench.corpora` when run as a script from anywhere

from bench.corpora import prepare  # noqa: E402

THROUGHPUT_TARGET = 0.9  # pipeline chunks/s ÷ raw encode chunks/s
RERUN_TARGET_S = 3.0
_SUMMARY = re.compile(r"(\d+) chunks in store, (\d+) embedded in ([\d.]+)s")


# --- stage timers ---------------------------------------------------------------------------------
class StageTimers:
    """Seconds spent in each ingest stage, by wrapping the functions that do the stage.

    The wrapped callables do not call one another, so no second is counted twice; what is left of the
    ingest's total is the rest (the ledger read, planning, count, version bump, lock).
    """

    STAGES = {
        "scan + hash": [("rag.ingest.pipeline", "scan")],
        "load (HTML -> text)": [("rag.ingest.pipeline", "load")],
        "chunk (sentences + tokenizer)": [("rag.ingest.chunking:Chunker", "split")],
        "embed (Embedder.embed)": [("rag.index.embedding:Embedder", "embed")],
        "Chroma writes (upsert, ledger, delete)": [
            ("rag.index.store:Store", "upsert"),
            ("rag.index.store:Store", "mark"),
            ("rag.index.store:Store", "delete_source"),
        ],
        "keyword index rebuild": [("rag.engine:RAG", "keyword_index")],
    }

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def installed(self) -> Iterator[StageTimers]:
        import importlib

        saved = []
        for stage, targets in self.STAGES.items():
            for where, attr in targets:
                module, _, cls = where.partition(":")
                owner = getattr(importlib.import_module(module), cls) if cls else importlib.import_module(module)
                original = owner.__dict__[attr]
                saved.append((owner, attr, original))
                setattr(owner, attr, self._timed(original, stage))
        try:
            yield self
        finally:
            for owner, attr, original in reversed(saved):
                setattr(owner, attr, original)

    def _timed(self, fn, stage: str):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t

        return timed


# --- subprocesses with their own peak RSS -----------------------------------------------------------
# Linux charges a child with the peak RSS of the address space it exec'd from: a child forked straight from
# this process (1+ GiB once the model is loaded) would report at least that. So a tiny launcher process
# (~10 MiB) starts the command and reads getrusage(RUSAGE_CHILDREN).ru_maxrss (KiB on Linux) after it.
_LAUNCHER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"rc": rc, "wall_s": wall, "cpu_s": u.ru_utime + u.ru_stime, "max_rss_mib": u.ru_maxrss / 1024}, f)
"""


def run_child(cmd: list[str]) -> dict:
    """Run ``cmd`` from the repo root: wall and CPU (user + system) seconds, max RSS in MiB, exit code, output.

    CPU time does not grow when other jobs share the machine; wall time does."""
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        result = Path(tmp) / "result.json"
        done = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(result), *cmd],
            cwd=REPO,
            env=_child_env(),
            capture_output=True,
            text=True,
        )
        if not result.exists():
            raise RuntimeError(f"launcher failed: {done.stderr[-2000:]}")
        return {**json.loads(result.read_text()), "stdout": done.stdout, "stderr": done.stderr}


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}  # the defaults, not the shell's
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    return env


def ingest_cmd(docs: Path, store: Path) -> list[str]:
    return [sys.executable, str(REPO / "ingest.py"), "--docs", str(docs), "--store", str(store), "-q"]


# --- the three measurements ----------------------------------------------------------------------------
def throughput(corpus: Path, work: Path, rounds: int) -> dict:
    """Full ingest vs raw encoding of the same texts, interleaved, best of ``rounds`` each.

    Two baselines, both warm, same batch size, same torch threads: ``SentenceTransformer.encode`` (the
    model loaded by sentence-transformers from the folder rag resolves), and ``.encode`` of the very model
    object the ingest used (`Embedder.model`, which rag may run without sentence-transformers). The first
    says what rag costs against the library everyone would use; the second isolates the pipeline's own
    overhead. When `Embedder.model` is a `SentenceTransformer` the two are one and the same.
    """
    from sentence_transformers import SentenceTransformer

    from rag import RAG, Settings
    from rag.index.embedding import Embedder, resolve_model_path
    from rag.index.layout import embedding_text

    settings = Settings(docs_dir=corpus, store_dir=work / "unused")
    embedder = Embedder(settings.embed_model, settings.embed_batch_size)
    warm_texts = ["warm up the model and the thread pool"] * settings.embed_batch_size
    embedder.embed(warm_texts)
    if isinstance(embedder.model, SentenceTransformer):
        st = embedder.model
    else:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the benchmark's output
        st = SentenceTransformer(str(resolve_model_path(settings.embed_model)), device="cpu")
        st.encode(warm_texts, batch_size=embedder.batch_size)
    encoders = {"sentence-transformers": st, "rag model alone": embedder.model}
    if st is embedder.model:
        del encoders["rag model alone"]

    # Warm-up ingest of one file: imports chromadb, bs4, bm25s once, outside every timed round.
    one = work / "warmup-docs"
    one.mkdir()
    shutil.copy2(sorted(corpus.iterdir())[0], one)
    warm = RAG(docs_dir=one, store_dir=work / "warmup-store")
    warm.embedder = embedder
    warm.ingest()

    runs: list[dict] = []
    encodes: dict[str, list[float]] = {name: [] for name in encoders}
    texts: list[str] = []
    for r in range(rounds):
        # Alternate the order, so a noisy neighbour does not always hit the same one (round 0 ingests
        # first: the texts to encode are the ones that ingest stored).
        order = ["ingest", *encoders]
        for what in order if r % 2 == 0 else order[::-1]:
            if what == "ingest":
                rag = RAG(docs_dir=corpus, store_dir=work / f"store-{r}")
                rag.embedder = embedder  # the same warm model object in every round
                timers = StageTimers()
                with timers.installed():
                    report = rag.ingest()
                if report.failed:
                    raise RuntimeError(f"ingest failed on {report.failed[:3]}")
                runs.append({"seconds": report.seconds, "chunks": report.embedded, "stages": dict(timers.seconds)})
                if not texts:
                    texts = [embedding_text(t, m.get("section")) for _, m, t in rag.store.all_chunks()]
                    assert len(texts) == report.embedded, (len(texts), report.embedded)
            else:
                t = time.perf_counter()
                encoders[what].encode(
                    texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True
                )
                encodes[what].append(time.perf_counter() - t)

    best = min(runs, key=lambda x: x["seconds"])
    n = best["chunks"]
    ingest_cps = n / best["seconds"]
    baselines = {}
    for name, seconds in encodes.items():
        cps = n / min(seconds)
        baselines[name] = {
            "seconds": seconds,
            "chunks_per_s": cps,
            "ratio": ingest_cps / cps,
            # Each round's ingest and encode ran back to back: their ratios show how much the noise moved.
            "ratio_per_round": [e / x["seconds"] for x, e in zip(runs, seconds, strict=True)],
        }
    head = baselines["sentence-transformers"]
    return {
        "corpus": corpus.name,
        "files": sum(1 for _ in corpus.iterdir()),
        "chunks": n,
        "batch_size": embedder.batch_size,
        "rag_model": type(embedder.model).__name__,
        "ingest_seconds": [x["seconds"] for x in runs],
        "ingest_chunks_per_s": ingest_cps,
        "baselines": baselines,
        "ratio": head["ratio"],
        "non_embed_share": 1 - best["stages"]["embed (Embedder.embed)"] / best["seconds"],
        "target": THROUGHPUT_TARGET,
        "met": head["ratio"] >= THROUGHPUT_TARGET,
        "stages_of_best": best["stages"],
    }


def rerun(corpus: Path, work: Path, reruns: int) -> dict:
    """First full ingest as a process, then unchanged reruns as processes and in this process."""
    store = work / "big-store"
    first = run_child(ingest_cmd(corpus, store))
    if first["rc"] != 0:
        raise RuntimeError(f"first ingest exited {first['rc']}: {first['stderr'][-2000:]}")
    m = _SUMMARY.search(first["stdout"])
    if not m:
        raise RuntimeError(f"cannot read the ingest summary from {first['stdout']!r}")
    chunks, embedded, seconds = int(m[1]), int(m[2]), float(m[3])

    fresh, fresh_cpu = [], []
    for _ in range(reruns):
        run = run_child(ingest_cmd(corpus, store))
        if run["rc"] != 0 or " 0 embedded" not in run["stdout"]:
            raise RuntimeError(f"the rerun changed something or failed: {run['stdout']} {run['stderr'][-2000:]}")
        fresh.append(run["wall_s"])
        fresh_cpu.append(run["cpu_s"])

    from rag import RAG

    rag = RAG(docs_dir=corpus, store_dir=store)
    calls = []
    for _ in range(2):
        t = time.perf_counter()
        report = rag.ingest()
        calls.append(time.perf_counter() - t)
        if report.embedded or report.added or report.updated or report.removed:
            raise RuntimeError(f"the in-process rerun changed something: {report.summary()}")
    return {
        "corpus": corpus.name,
        "files": sum(1 for _ in corpus.iterdir()),
        "chunks": chunks,
        "first_ingest_wall_s": first["wall_s"],
        "first_ingest_cpu_s": first["cpu_s"],
        "first_ingest_library_s": seconds,
        "first_ingest_chunks_per_s": embedded / seconds,
        "first_ingest_max_rss_mib": first["max_rss_mib"],
        "rerun_process_wall_s": fresh,
        "rerun_process_median_s": statistics.median(fresh),
        "rerun_process_cpu_s": fresh_cpu,
        "rerun_in_process_s": calls,  # [first call on this RAG (opens Chroma), second call]
        "target_s": RERUN_TARGET_S,
        "met_process": statistics.median(fresh) < RERUN_TARGET_S,
        "met_in_process": calls[1] < RERUN_TARGET_S,
    }


def rebuild(corpus: Path, work: Path, crosslingual: str) -> dict:
    """A fresh ingest, a --reset rebuild (the baseline: everything embedded again), and a rebuild forced by a
    new chunker version (vectors reused); seconds and chunks embedded of each, in this process."""
    from rag import RAG, config

    store = work / f"rebuild-{corpus.name}-{crosslingual}"
    engine = RAG(docs_dir=corpus, store_dir=store, crosslingual=crosslingual)
    runs = {}
    for name, step in (
        ("fresh", lambda: engine.ingest()),
        ("reset", lambda: engine.ingest(reset=True)),
        ("new chunker version", lambda: _bumped(config, lambda: RAG(engine.settings).ingest())),
    ):
        t = time.perf_counter()
        report = step()
        runs[name] = {"seconds": time.perf_counter() - t, "embedded": report.embedded, "reused": report.reused}
        runs[name]["derived"] = report.derived or ""
    return {"corpus": corpus.name, "crosslingual": crosslingual, "chunks": report.chunks, "runs": runs}


def _bumped(config, ingest):
    """Run ``ingest`` with `CHUNKER_VERSION` one higher (as a rag upgrade that reads documents differently)."""
    config.CHUNKER_VERSION += 1
    try:
        return ingest()
    finally:
        config.CHUNKER_VERSION -= 1


def model_only_rss() -> dict:
    """Peak RSS of processes that import rag, load the model and embed: one sentence (the baseline), and one
    full batch of inputs at the model's length limit (the most memory torch needs for one embedding call)."""
    out = {}
    for name, texts in (("one_sentence", "['one sentence']"), ("one_full_batch", "['lorem ipsum ' * 400] * b")):
        code = (
            "import rag; from rag import Settings; from rag.index.embedding import Embedder; "
            "s = Settings(); b = s.embed_batch_size; e = Embedder(s.embed_model, b); "
            f"e.embed({texts}); print(b, e.model.max_seq_length)"
        )
        run = run_child([sys.executable, "-c", code])
        if run["rc"] != 0:
            raise RuntimeError(run["stderr"][-2000:])
        batch, tokens = map(int, run["stdout"].split())
        out[name] = {"max_rss_mib": run["max_rss_mib"], "wall_s": run["wall_s"], "batch": batch, "tokens": tokens}
    out["max_rss_mib"] = out["one_sentence"]["max_rss_mib"]
    return out


# --- output ------------------------------------------------------------------------------------------------
def verdict(met: bool, how: str) -> str:
    return f"{'met' if met else '**not met**'} ({how})"


def margin(seconds: float) -> str:
    return f"{seconds:.2f} s to spare" if seconds >= 0 else f"{-seconds:.2f} s over"


def table(res: dict) -> str:
    rows = ["| measure | rag | baseline (same run) | target | verdict |", "|---|---|---|---|---|"]
    if t := res.get("throughput"):
        what = (
            f"full ingest throughput, {t['corpus']} ({t['files']} files, {t['chunks']} chunks), "
            f"best of {len(t['ingest_seconds'])}"
        )
        mine = f"{t['ingest_chunks_per_s']:.1f} chunks/s ({min(t['ingest_seconds']):.1f} s)"
        for name, b in t["baselines"].items():
            label = (
                "raw `SentenceTransformer.encode`"
                if name == "sentence-transformers"
                else f"`.encode` of rag's own model object ({t['rag_model']}), no pipeline"
            )
            rounds = ", ".join(f"{x:.2f}" for x in b["ratio_per_round"])
            gap = f"ratio {b['ratio']:.2f}, {b['ratio'] - t['target']:+.2f}; per round {rounds}"
            rows.append(
                f"| {what} | {mine} | {label}, same texts, batch {t['batch_size']}: {b['chunks_per_s']:.1f} "
                f"chunks/s ({min(b['seconds']):.1f} s) | ratio ≥ {t['target']} "
                f"| {verdict(b['ratio'] >= t['target'], gap)} |"
            )
            what = mine = "(same)"
    if r := res.get("rerun"):
        base = res.get("model_only", {})
        target = r["target_s"]
        rows.append(
            f"| first full ingest, {r['corpus']} ({r['files']} files, {r['chunks']} chunks), fresh process "
            f"| {r['first_ingest_wall_s']:.0f} s wall, {r['first_ingest_cpu_s']:.0f} s CPU "
            f"({r['first_ingest_chunks_per_s']:.1f} chunks/s) | – | – | – |"
        )
        med, cpu = r["rerun_process_median_s"], statistics.median(r["rerun_process_cpu_s"])
        runs = ", ".join(f"{s:.2f}" for s in r["rerun_process_wall_s"])
        rows.append(
            f"| rerun, nothing changed: a fresh `python ingest.py` process, startup included, median of "
            f"{len(r['rerun_process_wall_s'])} | {med:.2f} s wall ({runs}), {cpu:.2f} s CPU | – | < {target:.0f} s "
            f"| {verdict(r['met_process'], margin(target - med))} |"
        )
        first, second = r["rerun_in_process_s"]
        rows.append(
            f"| rerun, nothing changed: in-process, second `RAG(...).ingest()` call | {second:.2f} s "
            f"(first call on the object: {first:.2f} s) | – | < {target:.0f} s "
            f"| {verdict(r['met_in_process'], margin(target - second))} |"
        )
        if base:
            peak = r["first_ingest_max_rss_mib"]
            rows.append(
                f"| peak memory (max RSS) of that first full ingest | {peak:.0f} MiB "
                f"| import rag + load model + embed one sentence: {base['max_rss_mib']:.0f} MiB "
                f"| – | {peak - base['max_rss_mib']:+.0f} MiB over the model alone |"
            )
            if full := base.get("one_full_batch"):
                rows.append(
                    f"| (same) | {peak:.0f} MiB | import rag + load model + embed one full batch "
                    f"({full['batch']} × {full['tokens']} tokens): {full['max_rss_mib']:.0f} MiB | – "
                    f"| {peak - full['max_rss_mib']:+.0f} MiB over the model at work |"
                )
    for r in res.get("rebuild", []):
        fresh, reset, bumped = r["runs"]["fresh"], r["runs"]["reset"], r["runs"]["new chunker version"]
        xl = f", cross-lingual index {r['crosslingual']}" if r["crosslingual"] != "off" else ""
        rows.append(
            f"| rebuild after a new chunker version, {r['corpus']} ({r['chunks']} chunks{xl}) "
            f"| {bumped['seconds']:.1f} s, {bumped['embedded']} embedded, {bumped['reused']} reused "
            f"| `--reset` rebuild, everything embedded: {reset['seconds']:.1f} s ({reset['embedded']} embedded); "
            f"fresh ingest {fresh['seconds']:.1f} s | – | {reset['seconds'] / bumped['seconds']:.1f}× faster |"
        )
    out = "\n".join(rows)
    if t:
        total = min(t["ingest_seconds"])
        stages = t["stages_of_best"]
        lines = [
            "",
            "",
            f"Where the best {t['corpus']} ingest spent its {total:.1f} s:",
            "",
            "| stage | s | share |",
            "|---|---|---|",
        ]
        for stage, s in stages.items():
            lines.append(f"| {stage} | {s:.2f} | {s / total:.0%} |")
        rest = total - sum(stages.values())
        lines.append(f"| rest (ledger read, planning, lock, count) | {rest:.2f} | {rest / total:.0%} |")
        for name, b in t["baselines"].items():
            lines.append(f"| *baseline: {name}, same texts, one call* | *{min(b['seconds']):.2f}* | – |")
        lines.append(
            f"\nEverything but the embedding took {t['non_embed_share']:.0%} of the ingest: with the embed stage "
            f"exactly as fast as its baseline, the ratio would be {1 - t['non_embed_share']:.2f}."
        )
        out += "\n".join(lines)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="debian-reference", help="corpus for throughput (default: debian-reference)")
    p.add_argument("--big-corpus", default="postgresql", help="≥500-file corpus for rerun and memory")
    p.add_argument("--rounds", type=int, default=2, help="ingest/encode rounds for throughput, best kept (2)")
    p.add_argument("--reruns", type=int, default=3, help="fresh-process reruns, median kept (3)")
    p.add_argument(
        "--skip", choices=["throughput", "rerun", "rebuild"], action="append", default=[], help="leave a part out"
    )
    p.add_argument("--json", action="store_true", help="also write bench/out/ingest.json")
    args = p.parse_args(argv)

    for key in [k for k in os.environ if k.startswith("RAG_")]:
        del os.environ[key]  # measure the defaults, not whatever the shell sets
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    OUT.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU used (CPU torch)",
        "load_avg_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(dir=OUT, prefix="ingest-bench-") as tmp:
        work = Path(tmp)
        if "throughput" not in args.skip:
            print(f"throughput on {args.corpus} ...", file=sys.stderr)
            res["throughput"] = throughput(prepare(args.corpus), work, args.rounds)
        if "rebuild" not in args.skip:
            print(f"rebuilds on {args.corpus}, and on the seeds with the cross-lingual index ...", file=sys.stderr)
            res["rebuild"] = [
                rebuild(prepare(args.corpus), work, "off"),
                rebuild(REPO / "seeds", work, "on"),
            ]
        if "rerun" not in args.skip:
            print("peak RSS of the model alone ...", file=sys.stderr)
            res["model_only"] = model_only_rss()
            print(f"first full ingest + reruns on {args.big_corpus} (minutes) ...", file=sys.stderr)
            res["rerun"] = rerun(prepare(args.big_corpus), work, args.reruns)
    res["load_avg_end"] = os.getloadavg()

    print(
        f"ingest benchmark, {res['date']}, {res['machine']}; load average "
        f"{res['load_avg_start'][0]:.1f} at start, {res['load_avg_end'][0]:.1f} at end\n"
    )
    print(table(res))
    if args.json:
        (OUT / "ingest.json").write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {OUT / 'ingest.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
