"""Sphinx's markup in reStructuredText and MyST markdown sources -> the text a reader of the built page sees.

A documentation folder often holds the sources of its pages (Sphinx's ``_sources/*.rst.txt``, a project's
``docs/*.rst`` and ``*.md``). Read as plain text, their markup became answers: ``.. tab:: Unix/macOS``,
``pip-command-usage:: check``, ``{ref}`pip freeze```, ``.. _label:``. Here directives, roles, link targets and
comments are turned into what Sphinx would show, line by line, keeping the text's lines where they are:

* a directive's line goes; its options (``:caption: x``) go; its content stays (a code block's code, a
  note's sentences). An admonition keeps its label (``Note:``), a version note reads as Sphinx writes it
  (``New in version 8.0.``), a description (``.. py:function:: timeout(delay)``, ``.. option:: --user``) keeps
  what it describes, and a rubric or topic its title (a tab's label, "Unix/macOS", goes). Directives whose
  content is built from elsewhere or is no prose (``toctree``, ``image``, ``include``, ``index``, ``raw``,
  ``contents``, ``meta``) go whole.
* a comment or a link target (``.. _label:``, ``.. |name| image:: x``, ``(label)=``, ``% note``) goes;
* a role shows its text: ``:ref:`the guide <guide>``` -> ``the guide``, ``{doc}`install``` -> ``install``;
  a link its words (```PEP 503 <https://...>`_`` -> ``PEP 503``); an inline literal its code
  (````pip list```` -> ``pip list``); a paragraph's closing ``::`` is the colon Sphinx prints.

Example:
    >>> source = ".. note:: Back up first.\\n\\nRun ``pip list``, see :ref:`the guide <guide>`::\\n\\n    pip list"
    >>> print(rst_text(source))
    Note: Back up first.
    <BLANKLINE>
    Run pip list, see the guide:
    <BLANKLINE>
        pip list
"""

from __future__ import annotations

import re

# What a directive keeps of its own line, by name (its content always stays, unless it is dropped whole).
_LABELS = {
    "note": "Note:",
    "warning": "Warning:",
    "tip": "Tip:",
    "hint": "Hint:",
    "important": "Important:",
    "caution": "Caution:",
    "attention": "Attention:",
    "danger": "Danger:",
    "error": "Error:",
    "seealso": "See also:",
    "todo": "To do:",
}
_VERSIONS = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}
_TITLED = {"rubric", "topic", "sidebar", "admonition", "card", "dropdown"}  # a tab's label goes: "Unix/macOS"
_DESCRIBED = {"option", "envvar", "describe", "object", "function", "class", "method", "attribute", "data", "program"}
_DROPPED = {"toctree", "image", "figure", "include", "literalinclude", "raw", "contents", "index", "meta", "highlight"}
_DROPPED |= {"sectnum", "autosummary", "only", "ifconfig", "graphviz", "mermaid", "plot", "tabularcolumns"}
_CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "code-cell"}

_DIRECTIVE = re.compile(r"(?P<indent>[ \t]*)\.\.[ \t]+(?:\|[^|]+\|[ \t]+)?(?P<name>[\w:.+-]+)::(?P<args>.*)")
_COMMENT = re.compile(r"[ \t]*\.\.(?:[ \t]+\S.*)?")  # ".. _label:", ".. a comment", ".." alone
_OPTION = re.compile(r"[ \t]+:[\w-]+:(?:[ \t].*)?")
_ROLE = re.compile(r"(?::[\w:.+-]+:|\{[\w:.+-]+\})`(?P<body>[^`]+)`")
_LINK = re.compile(r"`(?P<body>[^`<]*?)[ \t]*(?:<[^`>]+>)?`__?(?!\w)")
_LITERAL = re.compile(r"``(?P<body>[^`]+?)``")
_FOOTNOTE = re.compile(r"[ \t]*\[(?:#\w*|\*|\d+)\]_")
_DOUBLE_COLON = re.compile(r"(?<=\S)::$")


def _label(name: str, args: str) -> str | None:
    """What a directive's own line becomes, or None when it goes (its content may stay)."""
    if name in _LABELS:
        return f"{_LABELS[name]} {args}".rstrip()
    if name in _VERSIONS:
        version, _, rest = args.partition(" ")
        return f"{_VERSIONS[name]} {version}." + (f" {rest}" if rest else "") if version else None
    if name in _TITLED or ":" in name or name in _DESCRIBED:
        return args or None  # a topic's title, a described function's signature ("py:function", "option")
    return None  # a code block (its code stays) and directives rag does not know


def _inline(line: str) -> str:
    line = _ROLE.sub(lambda m: _role_text(m["body"]), line)
    line = _LITERAL.sub(lambda m: m["body"], line)
    line = _LINK.sub(lambda m: m["body"], line)
    line = _FOOTNOTE.sub("", line)
    return _DOUBLE_COLON.sub(":", line)


def _role_text(body: str) -> str:
    """``the guide <guide>`` -> ``the guide``; ``~pkg.mod.func`` -> ``func``; ``!x`` -> ``x``."""
    if m := re.fullmatch(r"(?s)(.*?)\s*<[^<>]+>", body):
        return m[1] if m[1] else body
    body = body.lstrip("!")
    return body[1:].rsplit(".", 1)[-1] if body.startswith("~") else body


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def rst_text(text: str) -> str:
    """reStructuredText with its directives, roles, comments and targets resolved (see the module)."""
    lines = text.split("\n")
    out: list[str] = []
    literal: int | None = None  # inside a literal block: the indent of the line that introduced it
    i = 0
    while i < len(lines):
        line = lines[i]
        if literal is not None and (not line.strip() or _indent(line) > literal):
            out.append(line)  # code, as written
            i += 1
            continue
        literal = None
        if m := _DIRECTIVE.fullmatch(line):
            depth, name = _indent(line), m["name"].lower()
            i += 1
            while i < len(lines) and _OPTION.fullmatch(lines[i]) and _indent(lines[i]) > depth:
                i += 1  # the directive's options
            if name in _DROPPED or name.startswith("auto"):
                while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > depth):
                    i += 1  # the whole block
                out.append("")
                continue
            if (kept := _label(name, m["args"].strip())) is not None:
                out.append(m["indent"] + _inline(kept))
            else:
                out.append("")
            if name in _CODE_DIRECTIVES:
                literal = depth
            continue
        if _COMMENT.fullmatch(line):  # (a directive was taken above)
            depth = _indent(line)
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > depth:
                i += 1  # a comment's continuation lines
            out.append("")
            continue
        if line.rstrip().endswith("::"):
            literal = _indent(line)  # "as follows::" introduces a literal block
        out.append(_inline(line) if line.strip() != "::" else "")
        i += 1
    return "\n".join(out)


_MYST_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})\{(?P<name>[\w:.+-]+)\}(?P<args>.*)", re.M)
_PLAIN_FENCE = re.compile(r" {0,3}(?P<fence>`{3,}|~{3,}).*")
_MYST_TARGET = re.compile(r"^ {0,3}\([\w:.-]+\)=[ \t]*$", re.M)
_MYST_COMMENT = re.compile(r" {0,3}%.*")


def _code_block(lines: list[str], i: int, fence: str, out: list[str], opening: str) -> int:
    """Copy a fenced code block as written: ``opening``, its lines from ``i`` on, its closing fence; returns
    the index after it."""
    out.append(opening)
    while i < len(lines) and not lines[i].strip().startswith(fence):
        out.append(lines[i])
        i += 1
    if i < len(lines):
        out.append(lines[i])
        i += 1
    return i


def myst_text(text: str) -> str:
    """MyST markdown with its directives and roles resolved: a ```` ```{note} ```` fence becomes its label and
    its content, ```` ```{code-block} python ```` a plain code fence (its code stays code), a directive of a
    built-in kind Sphinx fills in itself (``{toctree}``) goes whole, as do ``(label)=`` targets and ``%``
    comments. Markdown without any of these marks is returned as it is."""
    if not (_MYST_FENCE.search(text) or _ROLE.search(text) or _MYST_TARGET.search(text)):
        return text
    lines = text.split("\n")
    out: list[str] = []
    closers: list[tuple[str, bool]] = []  # the open directive fences: (their closing fence, content dropped)
    i = 0
    while i < len(lines):
        line = lines[i]
        if closers and line.strip() == closers[-1][0]:
            closers.pop()
            out.append("")
            i += 1
            continue
        if closers and closers[-1][1]:
            out.append("")
            i += 1
            continue
        if (plain := _PLAIN_FENCE.fullmatch(line)) and not _MYST_FENCE.fullmatch(line):
            i = _code_block(lines, i + 1, plain["fence"], out, line)
            continue
        if m := _MYST_FENCE.fullmatch(line):
            name, fence = m["name"].lower(), m["fence"]
            i += 1
            while i < len(lines) and re.fullmatch(r" {0,3}:[\w-]+:.*", lines[i]):
                i += 1  # the directive's options
            if name in _CODE_DIRECTIVES and fence[0] != ":":  # a plain code fence, with its language
                i = _code_block(lines, i, fence, out, f"{m['indent']}{fence}{m['args'].strip()}")
                continue
            dropped = name in _DROPPED or name.startswith("auto")
            closers.append((fence, dropped))
            kept = None if dropped else _label(name, m["args"].strip())
            out.append(_inline(kept) if kept else "")
            continue
        if _MYST_TARGET.fullmatch(line) or _MYST_COMMENT.fullmatch(line):
            out.append("")
        else:
            out.append(_ROLE.sub(lambda m: _role_text(m["body"]), line))
        i += 1
    return "\n".join(out)
