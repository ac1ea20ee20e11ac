"""The examples in the docstrings of the reading modules run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "rag.question",
        "rag.reader",
        "rag.keyword",
        "rag.loaders",
        "rag.eval",
        "rag.chunking",
        "rag.config",
        "rag.injection",
        "rag.limits",
        "rag.sandbox",
        "rag.layout",
        "rag.llamaindex.nodes",
        "rag.ocr",
        "rag.scope",
        "rag.extras",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
