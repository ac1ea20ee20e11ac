"""Answer quality as CI guards it: the frozen seed set, the seed paraphrases and the Chinese questions over the
seed (dev and blind batches), run on the real store and packaged models with the default settings (the
cross-lingual index included), must not fall below the interval of the baseline recorded by `make eval`."""

from __future__ import annotations

import json

import pytest

from rag.eval import QASet, regressions, run

from .conftest import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seeds", "seeds-paraphrase", "seeds-zh"])
def test_answers_do_not_regress_beyond_the_baseline(name, tmp_path, monkeypatch):
    monkeypatch.delenv("RAG_CROSSLINGUAL")  # the default, as a user gets it (conftest turns it off elsewhere)
    qa = QASet.load(ROOT / "eval" / f"{name}.json")
    qa.corpus = ROOT / qa.corpus
    res = run(qa, ["default"], stores=tmp_path)
    baseline = json.loads((ROOT / "eval" / "baseline.json").read_text())[name]
    assert baseline, f"no baseline recorded for {name}: run `make eval`"
    assert regressions(res, baseline) == []
