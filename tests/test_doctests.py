"""The examples in the docstrings of every module of the package run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import rag

# Every module of the package, found, not listed: a new module's examples are collected without a change here.
MODULES = ["rag", *sorted(m.name for m in pkgutil.walk_packages(rag.__path__, "rag."))]


def _examples_in_source(module) -> int:
    """How many ``>>>`` examples the module's source holds: [">>> a", "... b", ">>> c"] -> 2."""
    return len(re.findall(r"^\s*>>> ", inspect.getsource(module), re.M))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    examples = [e for t in doctest.DocTestFinder().find(module) for e in t.examples]
    assert len(examples) == _examples_in_source(module)  # every example in the file is collected
    result = doctest.testmod(module)
    assert result.failed == 0  # doctest printed the failing example above
