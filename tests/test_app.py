"""The app (app.py, rag/app/ui.py): the `/ask` API through gradio_client, what the server refuses to serve,
the login, and the HTML an answer becomes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from rag import RAG
from rag.errors import BackendError, NotIngestedError
from rag.types import Answer, Citation, Passage, Sentence
from tests.conftest import ROOT, SEEDS, free_port, ingested

QUESTION = "When was the Virtual Assets Policy Statement issued?"


def _serve(rag: RAG, users=None):
    from rag.app.ui import build, launch

    demo = build(rag)
    port = free_port()
    launch(demo, rag, port=port, users=users, block=False, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> RAG:
    return ingested(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="module")
def app_url(seeded):
    demo, url = _serve(seeded)
    yield url
    demo.close(verbose=False)


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


# --- the API --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ask_endpoint_answers_with_numbered_sources(client):
    text = client.predict(QUESTION, api_name="/ask")
    answer, _, sources = text.partition("\n\nSources:\n")
    assert "2022" in answer and "[1]" in answer
    assert sources.startswith("[1] hashkey-interview.txt — “")
    assert "Virtual Assets Policy Statement" in sources


@pytest.mark.slow
def test_ask_endpoint_abstains_plainly(client):
    text = client.predict("What is the boiling point of liquid nitrogen on Mars?", api_name="/ask")
    assert "do not contain" in text and "Sources:" not in text


@pytest.mark.slow
def test_ask_endpoint_asks_within_chosen_documents(client):
    from gradio_client.exceptions import AppError

    text = client.predict(QUESTION, ["hashkey-interview.txt"], "", api_name="/ask")
    assert "2022" in text and "[1] hashkey-interview.txt" in text
    with pytest.raises(AppError, match=r"not among the ingested documents: minutes\.md"):
        client.predict(QUESTION, ["minutes.md"], "", api_name="/ask")
    with pytest.raises(AppError, match=r"folder 'archive': no ingested document is inside it"):
        client.predict(QUESTION, [], "archive", api_name="/ask")


@pytest.mark.slow
def test_only_ask_is_offered_as_api(client):
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/ask"]


@pytest.mark.slow
def test_empty_question_is_one_friendly_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Ask a question"):
        client.predict("   ", api_name="/ask")


@pytest.mark.slow
def test_nothing_ingested_is_one_sentence_not_a_traceback(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    (tmp_path / "empty-docs").mkdir()
    rag = RAG(docs_dir=tmp_path / "empty-docs", store_dir=tmp_path / "empty-store")
    demo, url = _serve(rag)
    try:
        with pytest.raises(AppError) as info:
            Client(url, verbose=False).predict(QUESTION, api_name="/ask")
        assert str(info.value) == "No documents are ingested yet: add some in the Documents tab, then ask again."
    finally:
        demo.close(verbose=False)


# --- serving safely ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        "gradio_api/file=/etc/passwd",
        "file=../../etc/passwd",
        "gradio_api/file=../../../../../../etc/passwd",
        "gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "gradio_api/file=/proc/self/environ",
    ],
)
def test_path_traversal_is_refused(app_url, path):
    r = httpx.get(app_url + path, timeout=10)
    assert r.status_code in (403, 404), r.status_code
    assert "root:" not in r.text


@pytest.mark.slow
def test_documents_and_store_are_not_served(app_url, seeded):
    for f in [seeded.settings.docs_dir / "hashkey-interview.txt", *seeded.settings.store_dir.glob("*.sqlite3")]:
        r = httpx.get(f"{app_url}gradio_api/file={f.resolve()}", timeout=10)
        assert r.status_code in (403, 404), (f, r.status_code)


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port``, as the kernel reports them
    (/proc/net/tcp and tcp6): {"127.0.0.1"} for a server on loopback only, {"0.0.0.0"} for every interface."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    # the kernel prints each 32-bit word of the address in host (little-endian) byte order
                    raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8))
                    found.add(str(ipaddress.ip_address(raw)))
    return found


@pytest.mark.slow
def test_binds_to_localhost_only_by_default(app_url):
    """What the server listens on, read from the kernel, not the URL this test built for it."""
    port = int(app_url.rsplit(":", 1)[1].strip("/"))
    assert _listening_addresses(port) == {"127.0.0.1"}
    import app

    args = app.parse_args([])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)


@pytest.mark.slow
def test_login_is_required_when_users_are_configured(seeded):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    from rag.app.ui import load_users

    demo, url = _serve(seeded, users=load_users("alice:wonder land,bob:pw2"))
    try:
        assert httpx.get(url + "config", timeout=10).status_code == 401
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("alice", "wrong"), verbose=False)
        text = Client(url, auth=("alice", "wonder land"), verbose=False).predict(QUESTION, api_name="/ask")
        assert "2022" in text
    finally:
        demo.close(verbose=False)


@pytest.mark.slow
def test_first_questions_arriving_together_after_a_start_all_get_answers(seed_docs, tmp_path):
    """Regression: questions arriving together right after `python app.py` started broke Chroma's client,
    created from several threads at once ("'RustBindingsAPI' object has no attribute 'bindings'",
    "Could not connect to tenant default_tenant"). A fresh process, as the app is, since the client is
    cached per process."""
    RAG(docs_dir=seed_docs, store_dir=tmp_path / "store").ingest()
    script = """if True:
        import sys, threading
        from rag import RAG
        from rag.app.ui import warm_up
        rag = RAG()
        warming = warm_up(rag, background=True)
        errors = []
        def ask():
            try:
                rag.search(sys.argv[1], k=1)
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=ask) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads + [warming]]
        print(errors)
    """
    out = subprocess.run(
        [sys.executable, "-c", script, QUESTION], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_users_from_env_and_file(tmp_path):
    from rag.app.ui import load_users, login_check
    from rag.errors import RagError

    f = tmp_path / "users"
    f.write_text("# team\ncarol:pa:ss:word\n\n")
    users = load_users("alice:pw, bob:pw2", f)
    assert users == [("alice", "pw"), ("bob", "pw2"), ("carol", "pa:ss:word")]
    check = login_check(users)
    assert check("carol", "pa:ss:word") and not check("carol", "pa") and not check("mallory", "pw")
    with pytest.raises(RagError, match="entry 2 is not 'user:password'") as info:
        load_users("alice:pw,bob-secret")
    assert "secret" not in str(info.value) and "bob" not in str(info.value)  # the bad entry is never echoed
    for entry in (":hunter2", "  :hunter2", "carol:"):  # no user name, or no password
        with pytest.raises(RagError, match="entry 1 is not 'user:password'") as info:
            load_users(entry)
        assert "hunter2" not in str(info.value) and "carol" not in str(info.value)
    f.write_text("dave-hunter2\n")
    with pytest.raises(RagError, match="entry 1 is not 'user:password'") as info:
        load_users(None, f)
    assert "hunter2" not in str(info.value) and "dave" not in str(info.value)
    with pytest.raises(RagError, match="cannot read the users file"):
        load_users(None, tmp_path / "missing")


@pytest.mark.slow
def test_deleting_the_last_document_empties_the_store_but_a_rescan_of_an_empty_folder_does_not(seed_docs, tmp_path):
    """The ingest refuses to prune a folder with no documents left (an unmounted folder must not wipe the
    store); only a delete from the app, which empties the folder on purpose, empties the store."""
    from rag.app.ui import _ingest
    from rag.errors import RagError

    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store")
    rag.ingest()
    (seed_docs / "hashkey-interview.txt").unlink()
    with pytest.raises(RagError, match="refusing to remove all"):
        _ingest(rag)  # what Re-scan does
    assert [d.source for d in rag.documents()] == ["hashkey-interview.txt"]
    assert "empty now" in _ingest(rag, emptied=True)  # what Delete does
    assert rag.documents() == []


def test_a_rescan_names_a_picture_without_text_apart_from_failures(seed_docs, tmp_path):
    """Re-scan's line: a blank picture is "no text" (read, recorded), a broken file "could not read"."""
    from rag.app.ui import _ingest
    from tests.conftest import blank_page

    blank_page().save(seed_docs / "icon.png")
    (seed_docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store")
    line = _ingest(rag)  # what Re-scan does
    assert "Found no text in icon.png (no text, not even by OCR)." in line
    assert "Could not read broken.pdf" in line and "Could not read icon.png" not in line
    assert "icon.png" in {d.source for d in rag.documents()}  # recorded: the next scan does not read it again
    assert "Found no text" not in _ingest(rag)


@pytest.mark.slow
def test_a_session_can_answer_with_an_llm_server_and_its_unsupported_sentences_are_marked(seeded):
    """A real OpenAI-protocol server (it echoes the prompt, so some sentences quote a passage and some
    cannot be verified), chosen in one session's settings, leaves the server's own backend alone."""
    from rag.app.render import render_answer
    from rag.app.ui import Backends
    from tests.llm_servers import ChatServer

    backends = Backends(seeded)
    assert backends.get("extractive") is seeded
    with ChatServer("openai") as server:
        session = backends.get("openai", server.url, "tiny", "")
        assert session is not seeded and session.embedder is seeded.embedder
        assert backends.get("openai", server.url + " ", "tiny") is session  # cached
        events = list(session.stream(QUESTION, k=2))
    deltas, answer = events[:-1], events[-1]
    assert len(deltas) > 5 and all(isinstance(d, str) for d in deltas)  # streamed, then the checked answer
    assert answer.answered and answer.citations and any(not s.supported for s in answer.sentences)
    out = render_answer(answer)
    assert out.count('<span class="rag-unverified"') == sum(not s.supported for s in answer.sentences)
    assert '<a class="rag-cite rag-n-1"' in out
    assert seeded.settings.llm == "extractive" and seeded.ask(QUESTION).backend == "extractive"


def test_the_servers_api_key_never_goes_to_a_url_a_session_chose():
    from rag.app.ui import Backends

    rag = RAG(llm="openai", llm_base_url="https://llm.internal/v1", llm_model="m", llm_api_key="server-secret")
    backends = Backends(rag)
    assert backends.get("openai", "https://llm.internal/v1", "m", "") is rag
    assert backends.get("openai", "https://llm.internal/v1", "other", "").settings.llm_api_key == "server-secret"
    assert backends.get("openai", "https://attacker.example/v1", "m", "").settings.llm_api_key is None
    assert backends.get("openai", "https://attacker.example/v1", "m", "mine").settings.llm_api_key == "mine"


# --- the HTML an answer becomes ------------------------------------------------------------------


def _answer(**kw) -> Answer:
    passage = "Intro line.\n\nThe <b>statement</b> was issued in 2022.\n\n# Not a heading\nMore $x$ text."
    cite = Citation(1, "policy.pdf", passage, "The <b>statement</b> was issued in 2022.", 0.9, page=3, section="Intro")
    defaults = dict(
        question="When?",
        text="The <b>statement</b> was issued in 2022. [1] It was also signed by everyone. [unverified]",
        citations=[cite],
        answered=True,
        sentences=[
            Sentence("The <b>statement</b> was issued in 2022.", [1], True),
            Sentence("It was also signed by everyone.", [], False),
        ],
        passages=[
            Passage(
                passage,
                "policy.pdf",
                0.03,
                3,
                "Intro",
                id="c1",
                ranks={"dense": 2, "bm25": 1},
                scores={"dense": 0.61, "bm25": 7.5, "fused": 0.0325},
            )
        ],
        query="When was the statement issued?",
        timings={"embed_ms": 12.0, "total_ms": 40.0},
    )
    return Answer(**{**defaults, **kw})


def test_answer_html_is_one_escaped_line_with_clickable_markers_and_sources():
    from rag.app.render import render_answer

    out = render_answer(_answer())
    assert "\n" not in out  # a blank line would end the HTML block and let markdown loose on the passage
    assert "<b>statement</b>" not in out and "&lt;b&gt;statement&lt;/b&gt;" in out  # document text is escaped
    assert '<a class="rag-cite rag-n-1"' in out and '<details class="rag-src rag-n-1">' in out
    assert "policy.pdf, p. 3, § Intro" in out
    assert "<mark>The &lt;b&gt;statement&lt;/b&gt; was issued in 2022.</mark>" in out
    assert '<span class="rag-unverified"' in out and ">unverified</span>" in out


def test_sentences_quoted_from_one_passage_share_one_source_row():
    from rag.app.render import render_answer

    passage = "Intro line. The statement was issued in 2022. It was signed by all. Other text."
    c1 = Citation(1, "policy.pdf", passage, "The statement was issued in 2022.", 0.9, page=3, passage_id="p1")
    c2 = Citation(2, "policy.pdf", passage, "It was signed by all.", 0.9, page=3, passage_id="p1")
    c3 = Citation(3, "other.md", "Elsewhere it says so.", "Elsewhere it says so.", 0.8, passage_id="p2")
    out = render_answer(_answer(text="A [1]. B [2]. C [3].", citations=[c1, c2, c3], sentences=[]))
    assert out.count("<details") == 2
    assert '<details class="rag-src rag-n-1 rag-n-2"><summary><b>[1] [2]</b>' in out
    row = out[out.index('class="rag-src rag-n-1 rag-n-2"') : out.index('class="rag-src rag-n-3"')]
    assert "<mark>The statement was issued in 2022.</mark> <mark>It was signed by all.</mark> Other text." in row
    assert '<details class="rag-src rag-n-3">' in out


def test_abstention_and_errors_render_plainly():
    from rag.app.render import render_answer
    from rag.app.ui import friendly, render_error

    out = render_answer(
        _answer(
            text="The documents do not contain an answer to this question.", citations=[], answered=False, sentences=[]
        )
    )
    assert "rag-abstain" in out and "rag-sources" not in out
    assert "Documents tab" in render_error(NotIngestedError("no documents ingested yet in /x; run ingest"))
    assert friendly(BackendError("connection refused to http://localhost:9")).startswith("The answering backend")
    assert friendly(ZeroDivisionError("boom")) == "Something went wrong on the server; the details are in its log."


def test_trace_shows_query_ranks_scores_and_timings():
    from rag.app.render import render_trace

    out = render_trace(_answer())
    assert "When was the statement issued?" in out
    assert "#2 (0.610)" in out and "#1 (7.500)" in out and "0.0325" in out
    assert "embed 12 ms" in out and "total 40 ms" in out


def test_api_text():
    from rag.app.render import api_text

    assert api_text(_answer()).endswith(
        "\n\nSources:\n[1] policy.pdf, p. 3, § Intro — “The <b>statement</b> was issued in 2022.”"
    )


@pytest.mark.slow
def test_example_questions_come_from_the_documents_and_get_answers(seeded):
    from rag.app.examples import Examples, candidate_questions

    text = (SEEDS / "hashkey-interview.txt").read_text()
    candidates = candidate_questions(seeded)
    assert "How does Hash Key view the recent discussions?" in candidates  # the interview's own question
    assert "How does HashKey see this?" not in candidates  # meaningless without its context
    assert not any("hashkey interview" in q for q in candidates)  # a file's name is no subject
    questions = Examples(seeded).get()
    assert 1 <= len(questions) <= 4 and set(questions) <= set(candidates)
    for q in questions:
        answer = seeded.ask(q)
        assert answer.answered and not answer.citations[0].quote.endswith("?")
        assert answer.citations[0].quote in text


# --- refused before Gradio sees them: foreign hosts, cross-origin writes, repeated failed sign-ins -----


@pytest.mark.slow
def test_a_foreign_host_name_is_refused_dns_rebinding(app_url):
    """Regression: `POST /gradio_api/queue/join` with `Host: evil.example:7875` and a matching Origin was
    answered (with `access-control-allow-origin: http://evil.example:7875`), and the stream returned the
    document list: a page on a rebound name could read and change the no-login localhost app."""
    port = app_url.rsplit(":", 1)[1].strip("/")
    evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    for method, path in [("GET", ""), ("GET", "config"), ("POST", "gradio_api/queue/join"), ("GET", "gradio_api/info")]:
        r = httpx.request(method, app_url + path, headers=evil, json={}, timeout=10)
        assert r.status_code == 421, (method, path, r.status_code)  # nothing of the app's in the reply
        assert r.json()["detail"] == "this app does not answer to the host name 'evil.example' (RAG_APP_ALLOWED_HOSTS)"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert httpx.get(app_url, headers={"Host": host}, timeout=10).status_code == 200


@pytest.mark.slow
def test_a_cross_origin_write_is_refused_but_the_apps_own_page_and_api_clients_are_served(app_url, client):
    """Regression: a cross-origin multipart POST to /gradio_api/upload was accepted."""
    files = {"files": ("x.md", b"# planted\n\nA planted document.", "text/markdown")}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        r = httpx.post(app_url + "gradio_api/upload", files=files, headers=headers, timeout=10)
        assert r.status_code == 403, (headers, r.status_code)
        assert r.json()["detail"] == "requests that change something must come from the app's own page"
    same = httpx.post(app_url + "gradio_api/upload", files=files, headers={"Origin": app_url.rstrip("/")}, timeout=10)
    assert same.status_code == 200  # the app's own page uploads
    assert "2022" in client.predict(QUESTION, api_name="/ask")  # no Origin: an API client, served


@pytest.mark.slow
def test_an_allowed_host_name_is_served(seeded):
    demo, url = _serve(seeded.with_settings(app_allowed_hosts=["rag.internal"]))
    try:
        port = url.rsplit(":", 1)[1].strip("/")
        assert httpx.get(url, headers={"Host": f"rag.internal:{port}"}, timeout=10).status_code == 200
        assert httpx.get(url, headers={"Host": f"other.internal:{port}"}, timeout=10).status_code == 421
    finally:
        demo.close(verbose=False)


@pytest.mark.slow
def test_failed_sign_ins_are_throttled_per_user_and_per_address(seeded):
    """Regression: 1,200 wrong logins went through in 1.7 s."""
    from rag.app.ui import load_users

    demo, url = _serve(seeded, users=load_users("alice:wonder land,bob:pw2"))

    def login(user: str, password: str) -> httpx.Response:
        return httpx.post(url + "login", data={"username": user, "password": password}, timeout=10)

    try:
        assert [login("alice", f"guess{i}").status_code for i in range(5)] == [400] * 5
        refused = login("alice", "guess5")
        assert refused.status_code == 429
        assert re.fullmatch(r"too many failed sign-ins for 'alice'; try again in \d+ s", refused.json()["detail"])
        assert login("alice", "wonder land").status_code == 429  # even the right password waits
        assert login("bob", "pw2").status_code == 200  # another user is not locked out
        # One address trying many names: after 4x the per-user limit in all, every name waits.
        codes = [login(f"user{i}", "x").status_code for i in range(15)]  # 5 (alice) + 15 = 20 failures
        assert codes == [400] * 15
        last = login("carol", "x")
        assert last.status_code == 429 and "from this address" in last.json()["detail"]
    finally:
        demo.close(verbose=False)


# --- sessions and Gradio's upload cache -------------------------------------------------------------


def _ask_event(http, question: str, session: str) -> str:
    """The chat's submit event, as the page sends it (the history State is the server's); all its output."""
    from tests.gradio_events import run_event

    # "Ask within" (all documents), then the saved conversation (a new one) and the browser's id (none)
    data = [question, [], None, "extractive", "", "", "", 3, [], None, None]
    return json.dumps(run_event(http, "rag-question", "submit", data, session_hash=session), ensure_ascii=False)


@pytest.mark.slow
def test_a_session_is_bound_to_its_sign_in(seeded):
    """Regression: Bob, sending a chat event with Alice's session hash, got retrieval over Alice's stored
    history (his follow-up was read with her conversation)."""
    from rag.app.ui import load_users

    demo, url = _serve(seeded, users=load_users("alice:pw1,bob:pw2"))
    try:
        with httpx.Client(base_url=url, timeout=60) as alice, httpx.Client(base_url=url, timeout=60) as bob:
            assert alice.post("/login", data={"username": "alice", "password": "pw1"}).status_code == 200
            assert bob.post("/login", data={"username": "bob", "password": "pw2"}).status_code == 200
            assert "2022" in _ask_event(alice, QUESTION, "alice-tab")
            stolen = _ask_event(bob, "And who issued it?", "alice-tab")
            assert "Virtual Assets" not in stolen  # nothing of her conversation reached his question
            assert "this chat session belongs to another signed-in user" in stolen
            followup = _ask_event(alice, "And who issued it?", "alice-tab")  # her history is intact
            assert "Virtual Assets Policy Statement" in followup
            assert "Virtual Assets" not in _ask_event(bob, "And who issued it?", "bob-tab")  # his own is empty
    finally:
        demo.close(verbose=False)


@pytest.mark.slow
def test_uploads_do_not_stay_downloadable_from_gradios_cache(seed_docs, tmp_path):
    """Regression: a deleted upload stayed downloadable from `/gradio_api/file=…/x.md`. Gradio's copy of an
    upload is removed once it is saved or refused."""
    from tests.gradio_events import run_event, upload

    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store")
    rag.ingest()
    demo, url = _serve(rag)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            good = upload(http, "heron.md", b"# Heron\n\nThe grey heron stands still in the river at dawn.\n")
            bad = upload(http, "broken.pdf", b"this is not a PDF at all")
            for f in (good, bad):
                assert http.get(f"/gradio_api/file={f['path']}").status_code == 200  # served while uploading
            out = json.dumps(run_event(http, "rag-upload", "upload", [[good, bad]], session_hash="s1"))
            assert "Added heron.md" in out and "Refused broken.pdf" in out
            for f in (good, bad):
                assert http.get(f"/gradio_api/file={f['path']}").status_code in (403, 404), f["path"]
                assert not Path(f["path"]).exists()
        assert "heron.md" in [d.source for d in rag.documents()]
    finally:
        demo.close(verbose=False)


def test_gradios_upload_folder_of_the_app_is_emptied_when_it_starts(tmp_path):
    """What a killed app left in its upload folder is gone when the next one starts."""
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    script = "import sys; from rag.app.uploads import private_cache; print(private_cache(sys.argv[1]))"
    run = [sys.executable, "-c", script, str(tmp_path / "store")]
    folder = Path(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.strip())
    (folder / "f00d").mkdir()
    (folder / "f00d" / "leaked.md").write_text("left by a killed app")
    assert subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.strip() == str(folder)
    assert list(folder.iterdir()) == []


# --- large uploads: progress, cancel, one limit in one unit --------------------------------------------


def test_a_large_upload_shows_progress_and_the_cancel_button_stops_it(seed_docs, tmp_path):
    """Regression: a 2 MB upload blocked the documents queue for 68 s with no progress and no way to stop
    it. Progress is reported inside the file; Cancel stops it and takes the new file out again."""
    from rag.app.handlers import handlers

    rag = RAG(docs_dir=seed_docs, store_dir=tmp_path / "store", embed_batch_size=4)
    rag.ingest()
    on = handlers(rag)
    shown: list[str] = []

    def progress(fraction, desc: str = "", unit: str = "") -> None:  # as gr.Progress is called
        shown.append(desc)
        if "chunks embedded" in desc:
            on.on_cancel()  # the person clicks Cancel while the bar moves

    big = tmp_path / "upload" / "big.txt"
    big.parent.mkdir()
    big.write_text(
        "\n\n".join(f"Heron log {i}: the grey heron {i} waited {i % 7} hours by pond {i}." * 3 for i in range(200))
    )
    status, _ = on.on_upload([str(big)], progress=progress)
    assert any(re.fullmatch(r"Ingesting big\.txt \(16 of \d+ chunks embedded\)", d) for d in shown), shown
    assert "Cancelled. Not added: big.txt." in status
    assert not (seed_docs / "big.txt").exists() and [d.source for d in rag.documents()] == ["hashkey-interview.txt"]


@pytest.mark.slow
def test_the_upload_limit_is_one_number_in_one_unit(app_url, seeded):
    """Regression: the browser said "exceed 19.1 Mb" while the label said 20 MB: Gradio counts MB as 2**20
    bytes, so every limit rag states in MB does too."""
    from rag.app.uploads import UploadError, check_size

    config = httpx.get(app_url + "config", timeout=10).json()
    limit = seeded.settings.max_file_mb
    assert config["max_file_size"] == limit * 2**20  # the browser shows it as f"{limit:.1f} Mb"
    labels = [c["props"].get("label") or "" for c in config["components"] if c["props"].get("elem_id") == "rag-upload"]
    assert f"up to {limit:g} MB each" in labels[0]
    check_size("a.txt", int(limit * 2**20), limit)  # exactly the limit passes here as in the browser
    with pytest.raises(UploadError):
        check_size("a.txt", int(limit * 2**20) + 1, limit)
