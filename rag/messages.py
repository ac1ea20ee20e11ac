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

import functools

from rag.language import is_traditional, language

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


# The app's own labels, shown in the browser's language where Gradio translates them (gr.I18n).
UI: dict[str, dict[str, str]] = {
    "tab_chat": {"en": "Chat", "hans": "对话", "hant": "對話"},
    "tab_documents": {"en": "Documents", "hans": "文件", "hant": "文件"},
    "tab_settings": {"en": "Settings", "hans": "设置", "hant": "設定"},
    "chat_placeholder": {
        "en": "Ask anything about the documents — or pick an example below.",
        "hans": "就文件提出任何问题，或选择下面的示例。",
        "hant": "就文件提出任何問題，或選擇下面的示例。",
    },
    "question_placeholder": {
        "en": "Ask a question about your documents…",
        "hans": "就您的文件提问…",
        "hant": "就您的文件提問…",
    },
    "ask": {"en": "Ask", "hans": "提问", "hant": "提問"},
    "clear": {"en": "Clear chat", "hans": "清空对话", "hant": "清除對話"},
    "trace": {"en": "Retrieval trace", "hans": "检索过程", "hant": "檢索過程"},
    "within": {
        "en": "Ask within (empty: all documents)",
        "hans": "只在这些文档中提问（留空：全部文档）",
        "hant": "只在這些文件中提問（留空：全部文件）",
    },
}
_LOCALES = {"en": ("en",), "hans": ("zh", "zh-CN", "zh-SG"), "hant": ("zh-TW", "zh-HK", "zh-MO")}


@functools.lru_cache(maxsize=1)
def i18n():
    """The app's labels for Gradio (``gr.I18n``): English, and Chinese in the browser's script."""
    import gradio as gr

    return gr.I18n(
        **{
            locale: {key: texts[script] for key, texts in UI.items()}
            for script, locales in _LOCALES.items()
            for locale in locales
        }
    )


def variant(question: str) -> str:
    """``"en"``, ``"hans"`` (Simplified Chinese) or ``"hant"`` (Traditional): the language rag answers in."""
    if language(question) != "zh":
        return "en"
    return "hant" if is_traditional(question) else "hans"


def say(key: str, question: str, **values: str) -> str:
    """Message ``key`` in the language of ``question``, with ``values`` filled in."""
    return MESSAGES[key][variant(question)].format(**values)
