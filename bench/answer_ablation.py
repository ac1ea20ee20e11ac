"""Which parts of the extractive answerer earn their place: each question-reading step switched off in turn.

    .venv/bin/python bench/answer_ablation.py [--thresholds 0.4,0.5]

For both committed question sets (seeds, debian-reference) and each threshold, prints answer accuracy,
citation precision and abstention accuracy (definitions in `rag.eval`) with the full answerer and with one
step of `rag.question` disabled:

* ``phrasing``: question terms keep the phrasing words ("roughly", "according to", "describe");
* ``kinds``: every sentence may answer every question (no date/quantity/money/name check);
* ``names``: no abstaining on names the corpus never mentions;
* ``none``: all three off, i.e. the answerer as it was before `rag.question`.

Retrieval is the default (dense + BM25); the stores are shared with `rag.eval`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETS = ["eval/seeds.json", "eval/debian-reference.json"]
STORES = ROOT / "bench" / "out" / "eval-stores"  # shared with rag.eval


def patches(variant: str) -> list:
    from rag.keyword import tokenize
    from rag.question import Question

    parse = Question.parse.__func__

    def parse_keeping_phrasing(cls, text):
        q = parse(cls, text)
        return Question(q.text, frozenset(tokenize(text)), q.kind, q.names)

    off = {
        "phrasing": [mock.patch.object(Question, "parse", classmethod(parse_keeping_phrasing))],
        "kinds": [mock.patch.object(Question, "fits", lambda self, s: True)],
        "names": [mock.patch.object(Question, "unknown_names", lambda self, known, pieces=None: [])],
    }
    if variant == "none":
        return [p for ps in off.values() for p in ps]
    return off.get(variant, [])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--thresholds", default="0.4,0.5")
    p.add_argument("--variants", default="full,phrasing,kinds,names,none")
    args = p.parse_args()
    from rag.eval import QASet, run

    sets = [QASet.load(ROOT / f) for f in SETS]
    print("| threshold | answerer | " + " | ".join(f"{qa.name}: acc / cit. prec. / abst." for qa in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for threshold in map(float, args.thresholds.split(",")):
        for variant in args.variants.split(","):
            cells = []
            for qa in sets:
                with contextlib.ExitStack() as stack:
                    for patch in patches(variant):
                        stack.enter_context(patch)
                    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
                    res = run(qa, ["default"], stores=STORES, abstain_threshold=threshold)
                m = res["answers"]["default"]
                cells.append(f"{m['accuracy']:.3f} / {m['citation_precision']:.3f} / {m['abstention_accuracy']:.2f}")
            label = "full" if variant == "full" else ("none of them" if variant == "none" else f"without {variant}")
            print(f"| {threshold} | {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
