"""Load and cold-start benchmark of the app: `python bench/load_bench.py [--clients 16] [--questions 10]`.

1. Cold start: `python app.py` as a fresh process over an ingested copy of seeds/, timed from process start
   to the page answering (listening) and to the first `/ask` answered (first answer possible). Target <= 8 s.
2. Load: ``--clients`` gradio_client clients in parallel, each asking ``--questions`` questions through
   `/ask`: errors, p50/p95/max latency, answers per second. With ``--churn``, one more client meanwhile
   adds a document and deletes it again, over and over, through the Documents tab's own events (upload,
   the listing refresh the page runs after it, confirm delete), as a person in a browser would.

Prints a markdown table for docs/BENCHMARKS.md (``## App``); ``--json`` prints the raw numbers instead.
Not a test: it takes about a minute and its numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gradio_events import run_event, run_fn, then, upload  # noqa: E402 - the page's own protocol

QUESTIONS = [
    "When was the Virtual Assets Policy Statement issued?",
    "How does HashKey view the recent discussions?",
    "Is compliance profitable for HashKey?",
    "What does HashKey say about layoffs?",
    "Why is Web3 in Hong Kong called a marathon?",
    "What did HashKey say about the cost of virtual asset trading services in Hong Kong?",
    "Is compliance and decentralization inherently contradictory?",
    "Has Hong Kong missed the opportunity?",
    "What is the boiling point of liquid nitrogen on Mars?",  # not in the documents: an abstention
    "Who founded HashKey Group?",
]


def wait_until_up(url: str, proc, log, poll: float, limit: float = 120) -> None:
    """Poll ``url`` until the app answers 200; exit with a pointer to its log if it dies or takes too long."""
    deadline = time.monotonic() + limit
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"app.py did not start; see {log}")
        time.sleep(poll)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: percentile([1, 2, 3, 4], 0.5) -> 2."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


def cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time (user + system, all threads) the process has used: less sensitive than wall time to what
    else runs on the machine."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_app(docs: Path, store: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_DOCS_DIR=str(docs), RAG_STORE_DIR=str(store), HF_HUB_OFFLINE="1")
    out = open(log, "ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)], env=env, stdout=out, stderr=out
    )


def cold_start(docs: Path, store: Path, log: Path) -> dict[str, float]:
    """Seconds from process start to listening, and to the first `/ask` answered."""
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    proc = start_app(docs, store, port, log)
    try:
        wait_until_up(url, proc, log, 0.05)
        listening = time.perf_counter() - started
        Client(url, verbose=False).predict(QUESTIONS[0], api_name="/ask")
        return {"listening_s": listening, "first_answer_s": time.perf_counter() - started, "cpu_s": cpu_seconds(proc)}
    finally:
        proc.terminate()
        proc.wait(30)


CHURN_DOC = "# Churn {n}\n\nThe churn test document number {n} says the kettle in room {n} is blue.\n"


def churn(url: str, done: threading.Event) -> dict:
    """Until ``done``: upload ``churn-<n>.md``, check it was added, refresh the listing (as the page does
    after an upload: the delete picker only offers listed documents), delete it, check it was removed."""
    cycles, errors = 0, []
    with httpx.Client(base_url=url, timeout=120) as http:
        refresh = then(http, "rag-upload", "upload")
        while not done.is_set() and len(errors) < 5:
            name = f"churn-{cycles}.md"
            try:
                data = upload(http, name, CHURN_DOC.format(n=cycles).encode())
                added = json.dumps(run_event(http, "rag-upload", "upload", [[data]], session_hash="churn"))
                if f"Added {name}" not in added:
                    raise ValueError(f"upload of {name} said: {added[-300:]}")
                run_fn(http, refresh, [], session_hash="churn")
                removed = json.dumps(run_event(http, "rag-confirm", "click", [[name]], session_hash="churn"))
                if f"Removed {name}" not in removed:
                    raise ValueError(f"delete of {name} said: {removed[-300:]}")
                run_fn(http, refresh, [], session_hash="churn")
                cycles += 1
            except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
                errors.append(f"churn {name}: {exc}")
    return {"churn_cycles": cycles, "churn_errors": len(errors), "churn_error_samples": errors}


def load(url: str, clients: int, questions: int, with_churn: bool = False) -> dict:
    """``clients`` threads, each its own gradio_client, each asking ``questions`` questions in turn."""
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients)

    def client(i: int) -> None:
        try:
            c = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
            with lock:
                errors.append(f"client {i}: {exc}")
            ready.abort()
            return
        ready.wait()
        for j in range(questions):
            q = QUESTIONS[(i + j) % len(QUESTIONS)]
            t = time.perf_counter()
            try:
                text = c.predict(q, api_name="/ask")
                if not text:
                    raise ValueError("empty answer")
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"client {i} question {j}: {exc}")
                continue
            with lock:
                latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    done, churned = threading.Event(), {"churn_cycles": 0, "churn_errors": 0, "churn_error_samples": []}
    churner = threading.Thread(target=lambda: churned.update(churn(url, done)))
    started = time.perf_counter()
    if with_churn:
        churner.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done.set()
    if with_churn:
        churner.join()
    return {
        **churned,
        "clients": clients,
        "questions_each": questions,
        "answers": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:5],
        "p50_s": statistics.median(latencies) if latencies else None,
        "p95_s": percentile(latencies, 0.95) if latencies else None,
        "max_s": max(latencies) if latencies else None,
        "wall_s": wall,
        "answers_per_s": len(latencies) / wall if wall else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--questions", type=int, default=10, help="questions per client")
    p.add_argument("--cold-runs", type=int, default=3, help="cold starts to time (the median is reported)")
    p.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    p.add_argument("--cold-only", action="store_true", help="time the cold starts, skip the load test")
    p.add_argument("--churn", action="store_true", help="add and delete a document, over and over, during the load")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="rag-load-bench-"))
    docs, store, log = work / "docs", work / "store", work / "app.log"
    shutil.copytree(ROOT / "seeds", docs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    subprocess.run(
        [sys.executable, str(ROOT / "ingest.py"), "-q", "--docs", str(docs), "--store", str(store)],
        check=True,
        env={**env, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
    )
    try:
        colds = [cold_start(docs, store, log) for _ in range(args.cold_runs)]
        if args.cold_only:
            print(json.dumps(colds, indent=2))
            return 0
        port = free_port()
        proc = start_app(docs, store, port, log)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_until_up(url, proc, log, 0.1)
            from gradio_client import Client

            Client(url, verbose=False).predict(QUESTIONS[0], api_name="/ask")  # warm, as a person would find it
            result = load(url, args.clients, args.questions, args.churn)
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result["cold_listening_s"] = statistics.median(c["listening_s"] for c in colds)
    result["cold_first_answer_s"] = statistics.median(c["first_answer_s"] for c in colds)
    result["cold_cpu_s"] = statistics.median(c["cpu_s"] for c in colds)
    result["cold_runs"] = colds
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if result["errors"] == result["churn_errors"] == 0 else 1
    print(f"machine: {result['machine']}\n")
    print("| measure | value |\n|---|---|")
    print(f"| cold start → listening (median of {len(colds)}) | {result['cold_listening_s']:.1f} s |")
    print(f"| cold start → first answer (median of {len(colds)}) | {result['cold_first_answer_s']:.1f} s |")
    print(f"| cold start: CPU time used by then (median) | {result['cold_cpu_s']:.1f} s |")
    print(f"| load: clients × questions | {args.clients} × {args.questions} = {args.clients * args.questions} |")
    if args.churn:
        print(f"| documents added and deleted during the load | {result['churn_cycles']} |")
    print(f"| errors | {result['errors']} |")
    if args.churn:
        print(f"| errors adding or deleting | {result['churn_errors']} |")
    if result["p50_s"] is not None:
        print(f"| latency p50 / p95 / max | {result['p50_s']:.2f} / {result['p95_s']:.2f} / {result['max_s']:.2f} s |")
    print(f"| throughput | {result['answers_per_s']:.1f} answers/s ({result['wall_s']:.1f} s wall) |")
    for e in result["error_samples"] + result["churn_error_samples"]:
        print(f"error: {e}", file=sys.stderr)
    return 0 if result["errors"] == result["churn_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
