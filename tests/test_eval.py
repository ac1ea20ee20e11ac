"""rag.eval.run: the metrics on hand-built rankings and answers, and one real run over a copy of seeds/."""

from __future__ import annotations

import json
import math

import pytest

from rag.eval.run import (
    answer_metrics,
    bootstrap,
    by_batch,
    first_rank,
    has_fact,
    hit_at,
    is_relevant,
    main,
    ndcg_at,
    reciprocal_rank,
    regressions,
    score_answer,
)
from rag.types import Answer, Citation

T, F = True, False


def test_relevance_ignores_case_and_whitespace():
    passage = "The system starts with the\n   GREETING message stored in\t/etc/motd."
    assert is_relevant(passage, ["the greeting  message stored in"])
    assert is_relevant(passage, ["no such phrase", "starts with the greeting"])  # any alternative
    assert not is_relevant(passage, ["greeting messages"])
    assert not is_relevant(passage, [])  # unanswerable questions have no evidence
    assert not is_relevant(passage, ["  "])  # a blank phrase would otherwise match everything


def test_fact_must_not_be_part_of_a_longer_word_or_number():
    assert has_fact("There are six (6)\nconsoles", ["6"])
    assert not has_fact("since 26 releases", ["6"])
    assert not has_fact("the 6th console", ["6"])
    assert has_fact("stored in /etc/motd.", ["/etc/motd"])
    assert has_fact("a 4\n GiB swap file", ["4 GiB"])
    assert has_fact("Sticky bits", ["sticky"])
    assert not has_fact("anything", [])


def test_rank_hit_and_reciprocal_rank():
    rels = [F, F, T, F, T]
    assert first_rank(rels) == 3
    assert first_rank([F, F]) is None
    assert (hit_at(3, 1), hit_at(3, 5), hit_at(None, 10)) == (0.0, 1.0, 0.0)
    assert reciprocal_rank(3) == pytest.approx(1 / 3)
    assert reciprocal_rank(11) == 0.0  # MRR@10: past the cutoff counts as a miss
    assert reciprocal_rank(None) == 0.0


def test_ndcg_exact_values():
    assert ndcg_at([T], 1) == 1.0
    assert ndcg_at([F, T], 1) == pytest.approx(1 / math.log2(3))  # 0.631
    # two relevant at ranks 1 and 3, two in the store: (1 + 1/2) / (1 + 1/log2 3) = 0.920
    assert ndcg_at([T, F, T], 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # three relevant chunks in the store, one found at rank 1: 1 / (1 + 0.631 + 0.5) = 0.469
    assert ndcg_at([T, F, F], 3) == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5))
    assert ndcg_at([F] * 10 + [T], 1) == 0.0  # rank 11 is outside nDCG@10
    assert ndcg_at([F, F], 0) == 0.0


def _answer(text: str, answered: bool, passages: list[str]) -> Answer:
    cites = [Citation(n=i, source="doc.txt", text=p, quote=p, score=1.0) for i, p in enumerate(passages, 1)]
    return Answer(question="q", text=text, citations=cites, answered=answered)


def test_answer_metrics_on_hand_built_answers():
    qs = [
        {"answerable": True, "facts": ["2022"], "evidence": ["policy statement in 2022"]},
        {"answerable": True, "facts": ["marathon"], "evidence": ["construction of Web3 is a"]},
        {"answerable": True, "facts": ["three", "3"], "evidence": ["three conferences"]},
        {"answerable": False, "facts": [], "evidence": []},
        {"answerable": False, "facts": [], "evidence": []},
    ]
    answers = [
        # right, cites the evidence passage and an unrelated one: 1 of 2 citations hold evidence
        _answer("In 2022 [1].", True, ["The Policy Statement in 2022 was issued.", "Carnival tickets."]),
        # wrong answer, but its one citation contains the fact: the citation still counts as ok
        _answer("A sprint [1].", True, ["It is a marathon, not a sprint."]),
        _answer("Not in the documents.", False, []),  # false abstention
        _answer("Not in the documents.", False, []),  # right abstention
        _answer("The founder is X [1].", True, ["X joined in 2018."]),  # false answer
    ]
    rows = [score_answer(a, q) | {"ms": float(i)} for i, (a, q) in enumerate(zip(answers, qs, strict=True))]
    assert [r["correct"] for r in rows] == [True, False, False, False, False]
    m = answer_metrics(rows, qs)
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["citation_precision"] == pytest.approx(2 / 3)  # 2 ok of the 3 citations of answered answerable
    assert m["abstention_accuracy"] == 0.5
    assert (m["false_abstentions"], m["false_answers"]) == (1, 1)
    assert m["p50_ms"] == 2.0


def test_metrics_per_batch_of_questions():
    """A set with a "dev" and a "blind" batch is reported per batch too; a set with one batch is not."""

    def q(qid, batch, answerable, rank, answered, correct, cit_ok=1):
        row = {"answered": answered, "correct": correct, "citations": int(answered), "citations_ok": cit_ok, "ms": 1.0}
        return {
            "id": qid,
            "batch": batch,
            "answerable": answerable,
            "rank": {"default": rank},
            "answer": {"default": row},
        }

    details = [
        q("a", "dev", True, 1, True, True),
        q("b", "dev", True, None, False, False, 0),
        q("c", "blind", True, 2, True, True),
        q("d", "blind", True, 6, True, False, 0),
        q("e", "blind", False, None, False, False, 0),
    ]
    got = by_batch(details)
    assert list(got) == ["blind", "dev"]
    means = lambda row: {k: v["mean"] for k, v in row.items()}  # noqa: E731
    assert means(got["dev"]["default"]) == {
        "hit@5": 0.5,
        "mrr@10": 0.5,
        "facts": 0.5,
        "citation_precision": 1.0,
        "abstention": 0.0,  # no unanswerable question in the batch: nothing measured
        "false_abstention": 0.5,
    }
    assert got["dev"]["default"]["abstention"]["n"] == 0
    blind = means(got["blind"]["default"])
    assert (blind["hit@5"], blind["mrr@10"]) == (0.5, pytest.approx((1 / 2 + 1 / 6) / 2))
    assert (blind["facts"], blind["citation_precision"], blind["abstention"]) == (0.5, 0.5, 1.0)
    # each metric carries a 95% bootstrap interval around its mean
    low, high = got["blind"]["default"]["facts"]["ci"]
    assert 0.0 <= low < 0.5 < high <= 1.0
    assert list(by_batch([{**d, "batch": None} for d in details])) == ["all"]  # one batch: the whole set


def test_a_drop_beyond_the_baseline_interval_is_a_regression():
    def res(mean, n=20):
        return {"name": "s", "by_batch": {"dev": {"default": {"facts": {"mean": mean, "ci": (0.0, 1.0), "n": n}}}}}

    baseline = {"dev": {"facts": {"mean": 0.8, "ci": (0.6, 0.95), "n": 20}}}
    assert regressions(res(0.7), baseline) == []  # inside the interval: sampling noise
    assert regressions(res(0.5), baseline) == ["s dev facts: 0.500, below the baseline 0.800 [0.60, 0.95]"]
    assert regressions(res(0.5, n=0), baseline) == []  # measured on nothing: nothing to compare


def test_bootstrap_interval_narrows_with_more_questions():
    few, many = bootstrap([1.0, 0.0] * 5), bootstrap([1.0, 0.0] * 100)
    assert few[0] < many[0] < 0.5 < many[1] < few[1]
    assert bootstrap([1.0] * 7) == (1.0, 1.0)


def test_missing_corpus_prints_the_setup_hint_and_exits_2(tmp_path, capsys):
    qa = {"name": "gone", "corpus": str(tmp_path / "nowhere"), "setup": "cp ../shared/x nowhere/", "questions": []}
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    assert main([str(tmp_path / "qa.json"), "--out", str(tmp_path / "out")]) == 2
    assert "cp ../shared/x nowhere/" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_on_seeds(seed_docs, tmp_path, monkeypatch):
    """A real ingest, real retrievers (and the real answerer, once there is one) over a copy of seeds/."""
    monkeypatch.chdir(tmp_path)  # the default store and out folders land in tmp_path/bench/out
    questions = [
        {
            "id": "t-1",
            "question": "Which year did the Hong Kong government put out its virtual asset policy statement?",
            "answerable": True,
            "facts": ["2022"],
            "evidence": ["Virtual Assets Policy Statement by the HKSAR Government in 2022"],
        },
        {
            "id": "t-2",
            "question": "When was HashKey's first Web3 Carnival held in Hong Kong?",
            "answerable": True,
            "facts": ["2023"],
            "evidence": ["holding the first Web3 Carnival at the beginning of 2023"],
        },
        {"id": "t-3", "question": "Who founded HashKey?", "answerable": False, "facts": [], "evidence": []},
    ]
    qa = {"name": "tiny", "corpus": str(seed_docs), "setup": "", "questions": questions}
    (tmp_path / "tiny.json").write_text(json.dumps(qa))
    assert main(["tiny.json", "--report-dir", "docs-eval"]) == 0

    out = tmp_path / "bench" / "out" / "eval"
    res = json.loads((out / "tiny.json").read_text())
    assert set(res["retrieval"]) == {"default", "bm25", "dense"}
    numbers = [v for m in res["retrieval"].values() for k, v in m.items() if not k.endswith("_ms")]
    numbers += [v for m in res["answers"].values() for k, v in m.items() if k in ("accuracy", "citation_precision")]
    assert numbers and all(0.0 <= v <= 1.0 for v in numbers)
    assert res["retrieval"]["default"]["hit@10"] == 1.0  # both answers are in a 19-chunk interview
    assert [d["relevant_in_store"] for d in res["details"]] == [1, 1, 0]
    for folder in (out, tmp_path / "docs-eval"):
        assert "## Retrieval" in (folder / "tiny.md").read_text()
        assert (folder / "tiny.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "bench" / "out" / "eval-stores" / "tiny").is_dir()
