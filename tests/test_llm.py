"""rag.llms.base against real servers on 127.0.0.1: llama.cpp's own (xllamacpp), small protocol servers, and the
packaged SmolLM2 model in-process."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.errors import BackendError
from rag.llms import make_llm
from rag.llms.http import OllamaLLM, OpenAICompatibleLLM
from rag.llms.local import LocalLLM, _packaged_model
from tests.llm_servers import ChatServer

ROOT = Path(__file__).resolve().parents[1]
HELLO = [{"role": "user", "content": "hello there world"}]


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def client(protocol: str, url: str, **kwargs: object) -> OpenAICompatibleLLM | OllamaLLM:
    cls = OpenAICompatibleLLM if protocol == "openai" else OllamaLLM
    return cls("tiny", base_url=url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["openai", "ollama"])
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server(protocol: str):
    with ChatServer(protocol) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound once by us, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- both HTTP protocols, against the protocol servers -------------------------------------------------


def test_complete_returns_the_reply(server: ChatServer, protocol: str) -> None:
    assert client(protocol, server.url).complete(HELLO) == "echo: hello there world"
    assert server.requests[-1]["body"]["stream"] is False


def test_stream_yields_deltas_that_join_to_the_reply(server: ChatServer, protocol: str) -> None:
    deltas = list(client(protocol, server.url).stream(HELLO))
    assert deltas == ["echo:", " hello", " there", " world"]
    assert server.requests[-1]["body"]["stream"] is True


def test_generation_settings_reach_the_server(server: ChatServer, protocol: str) -> None:
    client(protocol, server.url).complete(HELLO, max_tokens=7, temperature=0.5, stop=["\n\n"])
    body = server.requests[-1]["body"]
    assert body["model"] == "tiny" and body["messages"] == HELLO
    if protocol == "openai":
        assert (body["max_tokens"], body["temperature"], body["stop"]) == (7, 0.5, ["\n\n"])
    else:
        assert body["options"] == {"num_predict": 7, "temperature": 0.5, "stop": ["\n\n"]}


def test_connection_refused_is_one_clear_line(protocol: str, closed_port: int) -> None:
    llm = client(protocol, f"http://127.0.0.1:{closed_port}")
    for call in (llm.complete, lambda m: list(llm.stream(m))):
        with pytest.raises(BackendError) as caught:
            call(HELLO)
        message = str(caught.value)
        assert message.startswith(f"{protocol} backend at http://127.0.0.1:{closed_port} unreachable: ")
        assert "connection refused" in message.lower() and "\n" not in message


@pytest.mark.parametrize("command", ["!sleep 10", "!stall 10"])
def test_a_server_slower_than_the_timeout_is_a_backend_error(server: ChatServer, protocol: str, command: str) -> None:
    """The client gives up on its own timeout: when it raises, the server is still holding its reply (for
    10 s, or until the test closes it), as the server's own record of the request shows. A client that
    ignored its timeout, or took a much longer one, would get the reply instead."""
    llm = client(protocol, server.url, timeout=0.3)
    with pytest.raises(BackendError, match=r"timed out after 0\.3 s \(RAG_LLM_TIMEOUT\)"):
        list(llm.stream(ask(command)))
    assert not server.requests[-1]["replied"]
    if command == "!stall 10":  # the stream had begun: the headers and the first parts came before the stall
        assert server.requests[-1]["frames"] == 2
    else:
        assert server.requests[-1]["frames"] == 0
        with pytest.raises(BackendError, match="timed out"):
            llm.complete(ask(command))
        assert len(server.requests) == 2 and not server.requests[-1]["replied"]


def test_http_error_status_carries_the_servers_message(server: ChatServer, protocol: str) -> None:
    with pytest.raises(BackendError, match=r"backend at .* returned HTTP 500: the model crashed$"):
        client(protocol, server.url).complete(ask("!fail"))


@pytest.mark.parametrize("command", ["!garbage", "!error-midstream"])
def test_malformed_or_failed_streams_are_backend_errors(server: ChatServer, protocol: str, command: str) -> None:
    expected = "malformed response" if command == "!garbage" else "reported an error: out of memory"
    with pytest.raises(BackendError, match=expected):
        list(client(protocol, server.url).stream(ask(command)))
    if command == "!garbage":
        with pytest.raises(BackendError, match=r"malformed response \(not JSON\): <html>Bad gateway</html>"):
            client(protocol, server.url).complete(ask(command))


def test_a_stream_that_ends_without_its_closing_event(server: ChatServer, protocol: str) -> None:
    llm = client(protocol, server.url)
    if protocol == "openai":  # some OpenAI-compatible servers never send [DONE]: the deltas stand
        assert "".join(llm.stream(ask("!truncate"))) == "echo: !truncate"
    else:  # Ollama always ends with "done": true; without it the reply may be cut short
        with pytest.raises(BackendError, match=r'ended the stream before its last line \(no "done": true\)'):
            list(llm.stream(ask("!truncate")))


# --- OpenAI-compatible: keys, and llama.cpp's real server ----------------------------------------------


def test_api_key_is_sent_as_bearer_and_a_wrong_one_is_refused() -> None:
    with ChatServer("openai", api_key="right") as server:
        assert OpenAICompatibleLLM("m", base_url=server.url, api_key="right").complete(HELLO)
        assert server.requests[-1]["headers"]["authorization"] == "Bearer right"
        with pytest.raises(BackendError, match="returned HTTP 401: Incorrect API key provided"):
            OpenAICompatibleLLM("m", base_url=server.url, api_key="wrong").complete(HELLO)
        with pytest.raises(BackendError, match="HTTP 401"):
            list(OpenAICompatibleLLM("m", base_url=server.url).stream(HELLO))
        assert "authorization" not in server.requests[-1]["headers"]  # no key, no header


@pytest.fixture(scope="module")
def llama_server():
    """llama.cpp's own OpenAI-compatible HTTP server (xllamacpp.Server) with SmolLM2, key "test-key"."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(_packaged_model())
    params.n_ctx = 512
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1  # see `local` below
    params.verbosity = -1
    params.api_keys = ["test-key"]
    server = xllamacpp.Server(params)
    # as LocalLLM does: one request, so the server's task loop runs before teardown (see LocalLLM._start)
    server.handle_chat_completions({"messages": HELLO, "max_tokens": 1})
    yield server.listening_address + "/v1"
    del server


@pytest.mark.slow
def test_llama_cpp_server_complete_and_stream(llama_server: str) -> None:
    llm = OpenAICompatibleLLM("smollm2", base_url=llama_server, api_key="test-key")
    whole = llm.complete(ask("What is the capital of France?"), max_tokens=16)
    deltas = list(llm.stream(ask("What is the capital of France?"), max_tokens=16))
    assert whole.strip() and len(deltas) > 1
    assert "".join(deltas) == whole  # greedy decoding: the same text, whole or streamed


@pytest.mark.slow
def test_llama_cpp_server_refuses_a_wrong_key(llama_server: str) -> None:
    llm = OpenAICompatibleLLM("smollm2", base_url=llama_server, api_key="wrong")
    with pytest.raises(BackendError, match=r"^openai backend at .* returned HTTP 401: Invalid API Key$"):
        llm.complete(HELLO, max_tokens=4)


# --- Ollama specifics ----------------------------------------------------------------------------------


def test_ollama_unknown_model_says_so() -> None:
    with ChatServer("ollama") as server, pytest.raises(BackendError, match=r'HTTP 404: model "nope" not found'):
        OllamaLLM("nope", base_url=server.url).complete(HELLO)


# --- the local model, in-process -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> LocalLLM:
    # One thread: on a CPU shared with other jobs, llama.cpp's threads spin at every barrier waiting for
    # each other and 16 tokens can take 20 s; alone, one thread is steady.
    return LocalLLM(n_threads=1)


@pytest.mark.slow
def test_local_complete(local: LocalLLM) -> None:
    assert local.complete(ask("Name a colour."), max_tokens=16).strip()


@pytest.mark.slow
def test_local_stream_yields_deltas_as_they_are_written(local: LocalLLM) -> None:
    deltas = list(local.stream(ask("Count from one to ten."), max_tokens=16))
    assert len(deltas) > 1 and "".join(deltas).strip()


class _CountingServer:
    """llama.cpp's in-process server, counting the chunks it generates and noting when a request returns."""

    def __init__(self, server: Any) -> None:
        self.server, self.chunks, self.returned = server, 0, False

    def handle_chat_completions(self, request: dict, callback: Any = None) -> Any:
        def counted(chunk: dict) -> bool:
            self.chunks += 1
            return callback(chunk)

        try:
            return self.server.handle_chat_completions(request, counted if callback else None)
        finally:
            self.returned = True


@pytest.mark.slow
def test_local_stream_closed_early_frees_the_model(local: LocalLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the stream stops llama.cpp's generation: by the time close() returns, the request has
    returned after a few chunks, not run on to 500 tokens, and the model answers the next call."""
    counting = _CountingServer(local._load())
    monkeypatch.setattr(local, "_server", counting)
    stream = local.stream(ask("Tell me a long story about a dragon, a knight and a castle."), max_tokens=500)
    next(stream)
    stream.close()
    assert counting.returned and counting.chunks < 50, counting.chunks  # uncancelled, it wrote 342
    assert local.complete(ask("Say hi."), max_tokens=4)


@pytest.mark.slow
def test_local_loads_once_when_threads_race() -> None:
    llm, servers = LocalLLM(n_threads=1), []
    threads = [threading.Thread(target=lambda: servers.append(llm._load())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(servers) == 4 and all(s is servers[0] for s in servers)


@pytest.mark.slow
def test_local_prompt_longer_than_the_window_is_a_backend_error(local: LocalLLM) -> None:
    with pytest.raises(BackendError, match=r"^local backend \(.*\) reported an error: .*exceeds the available context"):
        local.complete(ask("word " * 3000), max_tokens=4)


@pytest.mark.slow
def test_local_model_file_problems(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="model file .*missing.gguf not found"):
        LocalLLM(tmp_path / "missing.gguf").complete(HELLO)
    (tmp_path / "bad.gguf").write_bytes(b"not a model")
    with pytest.raises(BackendError, match=r"could not load .*bad.gguf \(not a GGUF model\?\)"):
        list(LocalLLM(tmp_path / "bad.gguf").stream(HELLO))


# --- make_llm and import cost --------------------------------------------------------------------------


def test_make_llm_picks_the_backend() -> None:
    assert make_llm(Settings()) is None
    local = make_llm(Settings(llm="local"))
    assert isinstance(local, LocalLLM) and local._server is None  # nothing loaded until first use
    openai = make_llm(
        Settings(llm="openai", llm_model="m", llm_base_url="http://h:1/v1/", llm_api_key="k", llm_timeout=5)
    )
    assert isinstance(openai, OpenAICompatibleLLM)
    assert (openai.base_url, openai.api_key, openai.timeout) == ("http://h:1/v1", "k", 5)
    ollama = make_llm(Settings(llm="ollama", llm_model="llama3.2"))
    assert isinstance(ollama, OllamaLLM) and ollama.base_url == "http://127.0.0.1:11434"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(llm="openai", llm_base_url="http://h/v1"), "RAG_LLM_MODEL is required for llm=openai"),
        (dict(llm="ollama"), "RAG_LLM_MODEL is required for llm=ollama"),
        (dict(llm="openai", llm_model="m"), "RAG_LLM_BASE_URL is required for llm=openai"),
    ],
)
def test_make_llm_names_the_missing_setting(settings: dict[str, str], message: str) -> None:
    with pytest.raises(BackendError, match=message):
        make_llm(Settings(**settings))


@pytest.mark.slow
def test_importing_rag_llm_loads_neither_llama_cpp_nor_httpx() -> None:
    code = (
        "import sys, rag.llms, rag.llms.local, rag.llms.http; print(sorted({'xllamacpp', 'httpx'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- llama-index underneath ------------------------------------------------------------------------------


def test_the_environments_openai_key_never_goes_to_a_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins: llama-index's OpenAI client falls back to OPENAI_API_KEY when given no key; rag's openai backend
    must not send the user's OpenAI key to whatever server RAG_LLM_BASE_URL names."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-own-openai-key")
    with ChatServer("openai") as server:
        llm = OpenAICompatibleLLM("m", base_url=server.url)
        assert llm.complete(HELLO) == "echo: hello there world"
        assert "".join(llm.stream(HELLO)) == "echo: hello there world"
        assert all("authorization" not in r["headers"] for r in server.requests)
        assert "sk-users-own-openai-key" not in str(server.requests)


def test_ollama_key_is_sent_as_bearer_when_set() -> None:
    with ChatServer("ollama") as server:
        OllamaLLM("tiny", base_url=server.url, api_key="proxy-key").complete(HELLO)
        OllamaLLM("tiny", base_url=server.url).complete(HELLO)
        first, second = server.requests[-2:]
        assert first["headers"]["authorization"] == "Bearer proxy-key" and "authorization" not in second["headers"]


@pytest.mark.slow
def test_local_model_as_a_llama_index_llm(local: LocalLLM) -> None:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms import LLM

    from rag.llamaindex.llms import GGUFLLM

    llm = GGUFLLM(local)
    assert isinstance(llm, LLM) and llm.metadata.is_chat_model
    messages = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Name a colour.")]
    whole = llm.chat(messages, max_tokens=8).message.content
    chunks = list(llm.stream_chat(messages, max_tokens=8))
    assert whole and len(chunks) > 1 and chunks[-1].message.content == "".join(c.delta or "" for c in chunks)
    assert chunks[-1].message.content == whole  # greedy decoding: the same text, whole or streamed
    completion = list(llm.stream_complete("Say hi.", max_tokens=4))
    assert completion and completion[-1].text == llm.complete("Say hi.", max_tokens=4).text
