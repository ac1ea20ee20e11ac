"""rag's own words to the reader, in the language of the question: English, or Chinese in the question's
script (Simplified or Traditional). Quotes from the documents stay in the documents' language.

Example:
    >>> say("not_found", "How many staff?")
    'The documents do not contain an answer to this question.'
    >>> say("not_found", "員工有多少人？")
    '文件中沒有這個問題的答案。'
    >>> say("never_mention", "WireGuard 怎么配置？", name="WireGuard")
    '文件中从未提到“WireGuard”。'
"""

from __future__ import annotations

from .language import is_traditional, language

MESSAGES: dict[str, dict[str, str]] = {
    "not_found": {
        "en": "The documents do not contain an answer to this question.",
        "hans": "文件中没有这个问题的答案。",
        "hant": "文件中沒有這個問題的答案。",
    },
    "never_mention": {
        "en": "They never mention “{name}”.",
        "hans": "文件中从未提到“{name}”。",
        "hant": "文件中從未提到「{name}」。",
    },
    "no_crosslingual": {
        "en": "The question is not in the documents' language, and this store has no cross-lingual index "
        "(set RAG_CROSSLINGUAL=on and run the ingest again).",
        "hans": "问题的语言与文件不同，而此存储没有跨语言索引（设置 RAG_CROSSLINGUAL=on 后重新运行 ingest）。",
        "hant": "問題的語言與文件不同，而此儲存沒有跨語言索引（設定 RAG_CROSSLINGUAL=on 後重新執行 ingest）。",
    },
}


def variant(question: str) -> str:
    """``"en"``, ``"hans"`` (Simplified Chinese) or ``"hant"`` (Traditional): the language rag answers in."""
    if language(question) != "zh":
        return "en"
    return "hant" if is_traditional(question) else "hans"


def say(key: str, question: str, **values: str) -> str:
    """Message ``key`` in the language of ``question``, with ``values`` filled in."""
    return MESSAGES[key][variant(question)].format(**values)
