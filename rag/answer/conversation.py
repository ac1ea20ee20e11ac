"""Follow-ups -> standalone questions, so that retrieval sees what the person means.

With a language model backend the model rewrites the question. Without one (the extractive default) a
rule covers the common shapes::

    "How many licences were granted in Hong Kong?" + "and in Singapore?"
        -> "How many licences were granted in Singapore?"       (same preposition: the phrase is swapped)
    "How many staff does HashKey employ?" + "what about Binance?"
        -> "How many staff does Binance employ?"                (a name for a name: the last one is swapped)
    "How large is HashKey's insurance coverage?" + "and how much was it at first?"
        -> "how much was HashKey's insurance coverage at first?" (a pronoun: the earlier question's topic,
                                                                 its words without the question's frame)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import tokenize

_LEAD = re.compile(r"^\s*(and|or|but|also|so|then|what about|how about)\b[\s,]*", re.IGNORECASE)
_PREPOSITION = re.compile(r"^(in|on|at|for|from|to|by|during|with|about|under|before|after)\s+(.+)$", re.IGNORECASE)
# A run of capitalised words that is not the question's first word: "Hong Kong", "HashKey", "Middle East".
_NAME = re.compile(r"(?<!^)(?<![\w'])[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
_REFERS_BACK = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|him|there|the same)\b", re.IGNORECASE
)

# The auxiliary of an inverted question, between its topic and its subject: "… coverage does HashKey have".
_AUXILIARY = re.compile(r"do|does|did|is|are|was|were|has|have|had|can|could|will|would|should")
# The words that frame a question rather than name its topic: "How large is", "What was the", "Who are".
_FRAME = re.compile(
    rf"how|what|which|who|whom|whose|when|where|why|{_AUXILIARY.pattern}|"
    r"the|a|an|large|big|many|much|long|old|often|far|there|of|in|on|at|to|for|tell|me|about|please|i|you|we"
)

History = Sequence[dict] | Sequence[Sequence[str]]

REWRITE_PROMPT = (
    "Rewrite the last user message as one standalone question that can be understood without the "
    "conversation. Reply with the question only."
)


def user_turns(history: History | None) -> list[str]:
    """The user's messages, from Gradio's messages format or (user, assistant) pairs."""
    out = []
    for turn in history or []:
        if isinstance(turn, dict):
            if turn.get("role") == "user" and isinstance(turn.get("content"), str):
                out.append(turn["content"])
        elif turn and turn[0]:
            out.append(str(turn[0]))
    return out


def is_follow_up(message: str) -> bool:
    return bool(_LEAD.match(message) or _REFERS_BACK.search(message) or not tokenize(message))


def condense(message: str, history: History | None, llm=None) -> str:
    """A standalone version of ``message`` given the conversation ``history``."""
    previous = user_turns(history)
    if not previous or not is_follow_up(message):
        return message
    last = previous[-1]
    if llm is not None:
        convo = "\n".join(f"User: {q}" for q in previous[-3:]) + f"\nUser: {message}"
        try:
            rewritten = llm.complete(
                [{"role": "system", "content": REWRITE_PROMPT}, {"role": "user", "content": convo}], max_tokens=60
            ).strip()
        except Exception:  # a rewrite is a nicety: fall back to the rule below
            rewritten = ""
        if 0 < len(rewritten) < 300 and "\n" not in rewritten:
            return rewritten
    rest = _LEAD.sub("", message).strip().rstrip("?").strip()
    swap = _PREPOSITION.match(rest)
    if swap:
        prep = swap.group(1).lower()
        # the last "<prep> <phrase>" of the previous question, up to punctuation: "in Hong Kong"
        pattern = re.compile(rf"\b{prep}\s+[^,.;:?!]+", re.IGNORECASE)
        matches = list(pattern.finditer(last))
        if matches:
            m = matches[-1]
            return last[: m.start()] + rest + last[m.end() :]
    if rest[:1].isupper() and len(rest.split()) <= 4 and not _REFERS_BACK.search(rest):
        names = list(_NAME.finditer(last))
        if names:
            m = names[-1]
            return last[: m.start()] + rest + last[m.end() :]
    body = _LEAD.sub("", message).strip()
    topic = _topic(last, body)
    if not topic:
        return f"{last} {message}"
    pronoun = _REFERS_BACK.search(body)
    if pronoun:  # "how much was it at first?" -> "how much was <topic> at first?"
        return body[: pronoun.start()] + topic + body[pronoun.end() :]
    return f"{body.rstrip('?').strip()} ({topic})?"


def _topic(question: str, follow_up: str = "") -> str:
    """What an earlier question was about: its words from the first content word on, without the
    question's frame or words the follow-up says itself: ``"How large is HashKey's insurance coverage?"``
    -> ``"HashKey's insurance coverage"``; ``"When was the statement issued?"`` + "who issued it?" ->
    ``"statement"``. Where the question is inverted around a name, the name owns what comes before it:
    ``"How much insurance coverage does HashKey have?"`` -> ``"HashKey's insurance coverage"``."""
    said = {w.lower().strip(",?!.") for w in follow_up.split()}
    words = question.rstrip("?!. ").split()
    first = next((i for i, w in enumerate(words) if tokenize(w) and not _FRAME.fullmatch(w.lower().strip(","))), None)
    if first is None:
        return ""
    words = words[first:]
    for j in range(1, len(words) - 1):
        if _AUXILIARY.fullmatch(words[j].lower()) and words[j + 1][:1].isupper():
            k = j + 1  # the name: a run of capitalised words after the auxiliary
            while k < len(words) and words[k][:1].isupper():
                k += 1
            # its verb goes ("have", "employ"), what follows stays ("in Europe")
            words = [f"{' '.join(words[j + 1 : k])}'s", *words[:j], *words[k + 1 :]]
            break
    # a topic is a phrase, not a clause: an auxiliary left in it goes ("licences were granted" -> "licences granted")
    return " ".join(w for w in words if w.lower().strip(",") not in said and not _AUXILIARY.fullmatch(w.lower()))
