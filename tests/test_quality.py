"""Answer quality as CI guards it: the frozen seed set, the seed paraphrases and the Chinese questions over the
seed (dev and blind batches), run on the real store and packaged models with the default settings (the
cross-lingual index included), must not fall below the interval of the baseline recorded by `make eval`."""

from __future__ import annotations

import json
import shutil

import pytest

from rag import RAG
from rag.eval.run import QASet, regressions, run

from .conftest import ROOT, SEEDS

SETS = ["seeds", "seeds-paraphrase", "seeds-zh"]


@pytest.fixture(scope="module")
def seeds_store(tmp_path_factory):
    """The three sets ask about the same corpus, seeds/: it is ingested once, with the default settings (the
    cross-lingual index included; ~30 s on 2 busy cores), and each set starts from a copy of that store."""
    assert {QASet.load(ROOT / "eval" / f"{name}.json").corpus.name for name in SETS} == {SEEDS.name}
    store = tmp_path_factory.mktemp("quality") / "store"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("RAG_CROSSLINGUAL")  # the default, as a user gets it (conftest turns it off elsewhere)
        report = RAG(docs_dir=SEEDS, store_dir=store).ingest()
    assert report.ok and report.derived and "cross-lingual index" in report.derived
    return store


@pytest.mark.slow
@pytest.mark.parametrize("name", SETS)
def test_answers_do_not_regress_beyond_the_baseline(name, seeds_store, tmp_path, monkeypatch):
    monkeypatch.delenv("RAG_CROSSLINGUAL")  # the default, as a user gets it (conftest turns it off elsewhere)
    qa = QASet.load(ROOT / "eval" / f"{name}.json")
    qa.corpus = ROOT / qa.corpus
    shutil.copytree(seeds_store, tmp_path / qa.name)  # the store `run` opens: nothing left to ingest
    res = run(qa, ["default"], stores=tmp_path)
    assert res["chunks"] > 0
    baseline = json.loads((ROOT / "eval" / "baseline.json").read_text())[name]
    assert baseline, f"no baseline recorded for {name}: run `make eval`"
    assert regressions(res, baseline) == []
