"""Optional parts (rag/extras.py): without them the extractive product works, and asking for one says
which extra installs it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from rag.config import Settings
from rag.extras import EXTRAS, MissingExtraError
from rag.llms import make_llm
from tests.conftest import ROOT, SEEDS


def test_each_optional_package_is_only_in_its_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    for module, extra in EXTRAS.items():
        package = {"llama_index.llms.openai_like": "llama-index-llms-openai-like"}.get(module, module)
        package = {"llama_index.llms.ollama": "llama-index-llms-ollama"}.get(module, package)
        assert package not in required, f"{package} is a hard dependency"
        assert any(r.startswith(package) for r in extras[extra]), f"{package} missing from [{extra}]"
        assert any(r.startswith(package) for r in extras["all"]), f"{package} missing from [all]"


@pytest.mark.parametrize(
    ("llm", "module", "extra"),
    [
        ("local", "xllamacpp", "local"),
        ("openai", "llama_index.llms.openai_like", "remote"),
        ("ollama", "llama_index.llms.ollama", "remote"),
    ],
)
def test_a_backend_without_its_package_names_the_extra(monkeypatch, llm, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # what an install without the extra looks like to import
    settings = Settings(llm=llm, llm_model="m", llm_base_url="http://127.0.0.1:1/v1")
    with pytest.raises(MissingExtraError, match=rf"pip install 'rag\[{extra}\]'"):
        make_llm(settings)


def test_the_extractive_product_needs_no_extra(tmp_path):
    """Ingest and a checked answer in a process where every optional package fails to import."""
    blocked = sorted(EXTRAS) + ["llama_index.llms"]
    script = f"""
import sys
for name in {blocked!r}:
    sys.modules[name] = None
import shutil
from rag import RAG
shutil.copytree({str(SEEDS)!r}, {str(tmp_path / "docs")!r})
rag = RAG(docs_dir={str(tmp_path / "docs")!r}, store_dir={str(tmp_path / "store")!r}, crosslingual="off")
rag.ingest()
a = rag.ask("When was the Virtual Assets Policy Statement issued?")
print(a.answered, "2022" in a.text, a.citations[0].source)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "hashkey-interview.txt"]
