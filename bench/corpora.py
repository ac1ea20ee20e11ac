"""Real document corpora for benchmarks and evaluation, copied from Debian packages into ``bench/corpora/NAME/``.

Nobody here wrote them, they are licensed for redistribution, and apt pins their content, so numbers
measured on them can be reproduced on another Debian machine.

Usage:
    .venv/bin/python bench/corpora.py debian-reference postgresql

Example:
    >>> from bench.corpora import prepare  # doctest: +SKIP
    >>> prepare("debian-reference")  # doctest: +SKIP
    PosixPath('.../bench/corpora/debian-reference')
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpora"


@dataclass(frozen=True)
class Corpus:
    package: str  # the Debian package that ships the files
    pattern: str  # glob of the files to copy; ``**`` reaches into sub-folders
    about: str
    root: str | None = None  # copy paths relative to this folder (sub-folders kept); None: flat, by file name
    to_docx: bool = False  # convert each file to a Word document with pandoc (for a corpus of .docx files)


CORPORA = {
    "debian-reference": Corpus(
        "debian-reference-en",
        "/usr/share/debian-reference/*.en.html",
        "the Debian Reference, 15 HTML chapters (~3.5 MB)",
    ),
    "debian-reference-zh-cn": Corpus(
        "debian-reference-zh-cn",
        "/usr/share/debian-reference/*.zh-cn.html",
        "the Debian Reference in Simplified Chinese, 15 HTML chapters (~3.5 MB)",
    ),
    "debian-reference-zh-tw": Corpus(
        "debian-reference-zh-tw",
        "/usr/share/debian-reference/*.zh-tw.html",
        "the Debian Reference in Traditional Chinese, 15 HTML chapters (~3.5 MB)",
    ),
    "git-doc": Corpus(
        "git-doc",
        "/usr/share/doc/git-doc/*.html",
        "Git's reference manual pages, user manual and how-tos, 206 HTML pages (~14 MB)",
    ),
    "latex-guides": Corpus(
        "texlive-latex-base-doc",
        "/usr/share/texlive/texmf-dist/doc/latex/base/*guide.pdf",
        "the LaTeX team's guides for authors, class writers, fonts and encodings, 7 PDFs (~3.3 MB)",
    ),
    "flask-doc": Corpus(
        "python-flask-doc",
        "/usr/share/doc/python-flask-doc/html/**/*.html",
        "Flask's documentation (Sphinx HTML: API reference, patterns, tutorial), 77 pages (~3 MB)",
        root="/usr/share/doc/python-flask-doc/html",
    ),
    "asymptote": Corpus(
        "asymptote-doc",
        "/usr/share/doc/asymptote/*.pdf",
        "the Asymptote vector graphics language's manual and guides, 5 PDFs (~1.9 MB)",
    ),
    "debian-faq-docx": Corpus(
        "debian-faq",
        "/usr/share/doc/debian/FAQ/*.en.html",
        "the Debian FAQ's 17 chapters, converted to Word documents by pandoc (~0.4 MB of .docx)",
        to_docx=True,
    ),
    "sqlite-doc": Corpus(
        "sqlite3-doc",
        "/usr/share/doc/sqlite3/*.html",
        "SQLite 3.40's documentation (language, C API, shell, file format, FAQ), 214 HTML pages (~18 MB)",
    ),
    "postgresql": Corpus(
        "postgresql-doc-15",
        "/usr/share/doc/postgresql-doc-15/html/*.html",
        "the PostgreSQL 15 manual, ~1,170 HTML pages (~17 MB)",
    ),
}


def _install(package: str) -> None:
    """apt-get install ``package``, updating the package lists first only if apt cannot find it."""
    if shutil.which("apt-get") is None:
        raise SystemExit(f"apt-get not found: install the Debian package {package!r} by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    print(f"installing {package} ...", file=sys.stderr)
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)


def prepare(name: str) -> Path:
    """Make ``bench/corpora/NAME/`` hold exactly the corpus files, installing the package if needed.

    Idempotent: files already there with the same size and modification time are not copied again, and
    files that are not part of the corpus are removed (so the folder is the corpus, nothing else).
    """
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    corpus = CORPORA[name]
    sources = sorted(glob.glob(corpus.pattern, recursive=True))
    if not sources:
        _install(corpus.package)
        sources = sorted(glob.glob(corpus.pattern, recursive=True))
        if not sources:
            raise RuntimeError(f"package {corpus.package} installed but no files match {corpus.pattern}")
    dest = ROOT / name
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set()
    if corpus.to_docx and shutil.which("pandoc") is None:
        _install("pandoc")
    for src in map(Path, sources):
        target = dest / (src.relative_to(corpus.root) if corpus.root else src.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if corpus.to_docx:
            target = target.with_name(target.name.split(".")[0] + ".docx")
            wanted.add(target)
            if not target.exists() or target.stat().st_mtime < src.stat().st_mtime:
                # pandoc writes the same .docx for the same HTML; the mtime keeps reruns incremental
                subprocess.run(
                    ["pandoc", "--quiet", "-f", "html", "-t", "docx", str(src), "-o", str(target)], check=True
                )
                os.utime(target, (src.stat().st_atime, src.stat().st_mtime))
            continue
        wanted.add(target)
        st = src.stat()
        if target.exists() and (target.stat().st_size, int(target.stat().st_mtime)) == (st.st_size, int(st.st_mtime)):
            continue  # copy2 keeps mtime, so an unchanged file is not rewritten (and not re-ingested)
        shutil.copy2(src, target)
    for extra in sorted(dest.rglob("*"), reverse=True):  # deepest first, so emptied folders go too
        if extra.is_dir():
            if not any(extra.iterdir()):
                extra.rmdir()
        elif extra not in wanted:
            extra.unlink()
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Copy real corpora into bench/corpora/NAME/.")
    p.add_argument("names", nargs="+", metavar="NAME", choices=sorted(CORPORA), help=", ".join(sorted(CORPORA)))
    args = p.parse_args(argv)
    for name in args.names:
        path = prepare(name)
        n = sum(1 for f in path.rglob("*") if f.is_file())
        print(f"{path}: {n} files ({CORPORA[name].about})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
