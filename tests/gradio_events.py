"""Driving the app's events as its page does, over real HTTP: join Gradio's queue with a session hash, read
the event stream until the event completes. (gradio_client refuses the app's private events; the page's
own protocol does not.)

Example:
    with httpx.Client(base_url=url) as http:
        outputs = run_event(http, "rag-upload", "upload", [[file_data]], session_hash="s1")
"""

from __future__ import annotations

import json
from typing import Any

import httpx


def dependency(http: httpx.Client, elem_id: str, trigger: str) -> tuple[int, int]:
    """(fn_index, component id) of the event ``trigger`` of the component with ``elem_id``."""
    config = http.get("/config").json()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    for index, dep in enumerate(config["dependencies"]):
        for target, event in dep["targets"]:
            if ids.get(target) == elem_id and event == trigger:
                return index, target
    raise LookupError(f"no {trigger} event on #{elem_id}")


def then(http: httpx.Client, elem_id: str, trigger: str) -> int:
    """fn_index of the event the page runs after ``trigger`` of ``elem_id`` completes (a ``.then(...)``)."""
    first, _ = dependency(http, elem_id, trigger)
    for index, dep in enumerate(http.get("/config").json()["dependencies"]):
        if dep.get("trigger_after") == first:
            return index
    raise LookupError(f"nothing runs after the {trigger} event on #{elem_id}")


def run_event(
    http: httpx.Client, elem_id: str, trigger: str, data: list[Any], session_hash: str, timeout: float = 120
) -> list[dict]:
    """Run one event to completion; returns every message of its stream (the last is ``process_completed``)."""
    fn_index, trigger_id = dependency(http, elem_id, trigger)
    return run_fn(http, fn_index, data, session_hash, trigger_id, timeout)


def run_fn(
    http: httpx.Client,
    fn_index: int,
    data: list[Any],
    session_hash: str,
    trigger_id: int | None = None,
    timeout: float = 120,
) -> list[dict]:
    """Run the event function ``fn_index`` to completion, as `run_event` does (e.g. one found by `then`)."""
    payload = {
        "data": data,
        "fn_index": fn_index,
        "session_hash": session_hash,
        "event_data": None,
        "trigger_id": trigger_id,
    }
    joined = http.post("/gradio_api/queue/join", json=payload)
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    messages = []
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash}, timeout=timeout) as s:
        for line in s.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("event_id") != event_id:
                continue
            messages.append(message)
            if message.get("msg") == "process_completed":
                return messages
    raise RuntimeError(f"the event stream ended before event {fn_index} completed: {messages[-3:]}")


def upload(http: httpx.Client, name: str, data: bytes) -> dict:
    """POST a file to Gradio's upload route, as the page does; returns the FileData the upload event takes."""
    r = http.post("/gradio_api/upload", files={"files": (name, data, "application/octet-stream")})
    r.raise_for_status()
    path = r.json()[0]
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
