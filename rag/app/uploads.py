"""Adding and removing document files from the app, checked on the server.

A browser sends whatever name and bytes it likes, so nothing it sends is trusted: the name must be a
plain file name, the type one rag reads, the size under ``max_file_mb``, and the file must actually load.
A file that fails any check gets one line saying why and changes nothing: it is checked before it is
copied into the docs folder, and it never replaces a file already there until it has passed.

Example:
    >>> safe_name("notes/Café notes.md")
    'Café notes.md'
    >>> safe_name("../../etc/passwd")
    Traceback (most recent call last):
    ...
    rag.app.uploads.UploadError: ../../etc/passwd: a file name may not contain '..'
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import DocumentError, RagError
from rag.ingest.loaders import SUPPORTED_SUFFIXES, format_of, load, suffix_of
from rag.limits import MB, Limits

MAX_NAME_BYTES = 255  # the limit of ext4, APFS and NTFS for one path component
STAGED_PREFIX = ".upload-"  # a file being saved, hidden from the ingest until it is renamed
_DRIVE = re.compile(r"^[A-Za-z]:")  # C:\x or C:x, a Windows path


class UploadError(RagError):
    """An uploaded file was refused; the message says which file and why, in one line."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass
class UploadResult:
    """What `add_files` did: names saved into the docs folder (``replaced`` also existed before) and
    ``(name, reason)`` for every file refused."""

    saved: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def safe_name(name: str) -> str:
    """The file name to save an upload under, or `UploadError`.

    Refused: absolute paths (``/etc/x``, ``\\\\server\\x``, ``C:\\x``), any ``..`` component, control and
    invisible formatting characters (``\\n``, NUL, the right-to-left override that disguises ``.exe``),
    hidden names (``.env``), and names too long for a file system. Folders of a relative name are dropped
    (``notes/a.md`` -> ``a.md``: browsers send them for dropped folders). Letters of any script are kept,
    normalised to NFC so ``é`` typed two ways is one file.
    """
    shown = repr(name)[1:-1] if name else "(no name)"
    if not name or not name.strip():
        raise UploadError(shown, "the file has no name")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise UploadError(shown, "a file name may not contain control or invisible characters")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UploadError(shown, "a file name may not be an absolute path")
    parts = re.split(r"[\\/]", name)
    if ".." in (p.strip() for p in parts):
        raise UploadError(shown, "a file name may not contain '..'")
    base = unicodedata.normalize("NFC", parts[-1]).strip()
    if not base:
        raise UploadError(shown, "the file has no name, only a folder")
    if base.startswith("."):
        raise UploadError(shown, "hidden file names (starting with '.') are not accepted")
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        raise UploadError(shown, f"the file name is too long (over {MAX_NAME_BYTES} bytes)")
    return base


def check_type(name: str) -> None:
    """`UploadError` unless rag can read a file called ``name`` (`rag.ingest.loaders.format_of`)."""
    if format_of(name) is None:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        kinds += ", and text files without a suffix such as README"
        raise UploadError(name, f"'{suffix_of(name)}' files are not supported (supported: {kinds})")


def check_size(name: str, size: int, max_file_mb: float) -> None:
    """`UploadError` when the file is empty or over the limit (MB = 2**20 bytes, as the ingest and the
    browser's own check count)."""
    if size == 0:
        raise UploadError(name, "the file is empty")
    if size > max_file_mb * MB:
        raise UploadError(name, f"too large ({size / MB:.1f} MB > limit {max_file_mb:g} MB)")


def add_files(
    uploads: list[tuple[str, Path]], docs_dir: Path, max_file_mb: float, limits: Limits | None = None
) -> UploadResult:
    """Check each ``(client file name, temporary path)`` and copy the good ones into ``docs_dir``.

    Each file is checked alone: a bad one is reported and skipped, the others are still saved. A file is
    loaded (within ``limits``) from a private copy outside ``docs_dir``, and only a file that loads is
    copied to a hidden temporary name beside its target, then renamed: the ingest never sees half a file,
    a file that fails to load never replaces the one already there, and a parse that dies leaves nothing in
    the documents folder.
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    result = UploadResult()
    for client_name, tmp in uploads:
        try:
            name = safe_name(client_name)
            check_type(name)
            try:
                size = Path(tmp).stat().st_size
            except OSError as exc:
                raise UploadError(name, f"the upload cannot be read ({exc.strerror or exc})") from None
            check_size(name, size, max_file_mb)
            target = docs_dir / name
            if target.is_symlink() or (target.exists() and not target.is_file()):
                raise UploadError(name, "a folder or link of that name is already in the documents folder")
            existed = target.exists()
            _place(Path(tmp), target, name, max_file_mb, limits)
        except UploadError as exc:
            result.refused.append((exc.name, exc.reason))
            continue
        result.saved.append(name)
        if existed:
            result.replaced.append(name)
    return result


def _place(src: Path, target: Path, name: str, max_file_mb: float, limits: Limits | None) -> None:
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as private:
        checked = Path(private) / target.name  # the loader picks its reader by the name
        shutil.copyfile(src, checked)
        try:  # the loader's own checks: a .pdf that is not a PDF, a document without any text, a zip bomb ...
            load(checked, name, int(max_file_mb * MB), limits)
        except DocumentError as exc:
            raise UploadError(name, exc.reason) from None
        fd, staged = tempfile.mkstemp(prefix=STAGED_PREFIX, suffix=target.suffix, dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(checked, staged)
            os.replace(staged, target)
        finally:
            if os.path.exists(staged):
                os.unlink(staged)


def remove_staged(docs_dir: Path) -> list[str]:
    """Delete the hidden ``.upload-*`` files a process killed while saving an upload left in ``docs_dir``
    (run when the app starts); returns their names."""
    removed = []
    for path in docs_dir.glob(f"{STAGED_PREFIX}*") if docs_dir.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def document_path(docs_dir: Path, source: str, known: set[str]) -> Path:
    """The file of an ingested document, or `UploadError` when ``source`` is not one, or points outside."""
    if source not in known:
        raise UploadError(source or "(nothing)", "not an ingested document")
    root = docs_dir.resolve()
    path = docs_dir / source
    # resolve the folder, not the file: deleting a symlinked document removes the link, not its target
    if root != path.parent.resolve() and root not in path.parent.resolve().parents:
        raise UploadError(source, "is outside the documents folder")
    return path


def delete_file(docs_dir: Path, source: str, known: set[str]) -> bool:
    """Remove the file of ingested document ``source``; False when it was already gone from disk."""
    path = document_path(docs_dir, source, known)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UploadError(source, f"cannot delete it ({exc.strerror or exc})") from None
    return True


def has_documents(docs_dir: Path) -> bool:
    """True when ``docs_dir`` still holds a file the ingest would read (so an ingest may prune freely)."""
    seen = set()
    for root, dirs, files in os.walk(docs_dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(format_of(f) is not None for f in files):
            return True
    return False


# --- Gradio's copies of uploads ---------------------------------------------------------------------

_cache_cleaned: set[Path] = set()


def private_cache(store_dir: Path) -> Path:
    """Give Gradio a folder of this app's own for uploads (unless ``GRADIO_TEMP_DIR`` is set), and empty it
    the first time in a process: what an earlier run left there (it was killed before cleaning up) must not
    stay downloadable. Call before the app's components are made; returns the folder.

    The folder is named after the store, so two apps on one machine never empty each other's.
    """
    key = hashlib.sha256(str(Path(store_dir).resolve()).encode()).hexdigest()[:12]
    mine = Path(tempfile.gettempdir()) / f"rag-uploads-{key}"
    folder = Path(os.environ.setdefault("GRADIO_TEMP_DIR", str(mine)))
    if folder == mine and folder not in _cache_cleaned:
        _cache_cleaned.add(folder)
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _gradio_cache() -> Path:
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def discard_cached_named(names: list[str]) -> None:
    """Delete every copy of a file called one of ``names`` (deleted documents) from Gradio's upload folder."""
    wanted = {Path(n).name for n in names}
    cache = _gradio_cache()
    if wanted and cache.is_dir():
        discard_cached([p for p in cache.rglob("*") if p.name in wanted and p.is_file()])


def discard_cached(paths: list[Path]) -> None:
    """Delete Gradio's cached copies of uploads (and their folders once empty); paths outside Gradio's
    upload folder are left alone."""
    cache = _gradio_cache()
    for path in paths:
        real = Path(path).resolve()
        if cache not in real.parents:
            continue
        real.unlink(missing_ok=True)
        folder = real.parent
        while folder != cache and cache in folder.parents:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
            folder = folder.parent
