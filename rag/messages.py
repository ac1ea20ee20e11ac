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
    # whole-document answers (rag/answer/overview.py)
    "no_summary_sentence": {
        "en": "{source} has no sentence to quote in a summary.",
        "hans": "{source} 中没有可在摘要中引用的句子。",
        "hant": "{source} 中沒有可在摘要中引用的句子。",
    },
    "covered_all": {
        "en": "Covered all {total} passages of {source} (summary of {kept} {sentences}).",
        "hans": "已读完 {source} 的全部 {total} 个段落（摘要共 {kept} 句）。",
        "hant": "已讀完 {source} 的全部 {total} 個段落（摘要共 {kept} 句）。",
    },
    "covered_some": {
        "en": "Covered {read} of {total} passages of {source} (summary of {kept} {sentences}).",
        "hans": "已读 {source} 的 {total} 个段落中的 {read} 个（摘要共 {kept} 句）。",
        "hant": "已讀 {source} 的 {total} 個段落中的 {read} 個（摘要共 {kept} 句）。",
    },
    "covered_only": {
        "en": "Covered the only passage of {source} (summary of {kept} {sentences}).",
        "hans": "已读完 {source} 唯一的段落（摘要共 {kept} 句）。",
        "hant": "已讀完 {source} 唯一的段落（摘要共 {kept} 句）。",
    },
    "which_word": {
        "en": "Which word or phrase should I look for in the documents?",
        "hans": "要在文件中查找哪个词或短语？",
        "hant": "要在文件中查找哪個詞或短語？",
    },
    "no_document_mentions": {
        "en": "No document mentions “{topic}” (searched all {passages} passages of {docs} {documents}).",
        "hans": "没有文件提到“{topic}”（已搜索 {docs} 份文件的全部 {passages} 个段落）。",
        "hant": "沒有文件提到「{topic}」（已搜尋 {docs} 份文件的全部 {passages} 個段落）。",
    },
    "documents_mention": {
        "en": "{found} of {docs} {documents} {verb} “{topic}”:",
        "hans": "{docs} 份文件中有 {found} 份提到“{topic}”：",
        "hant": "{docs} 份文件中有 {found} 份提到「{topic}」：",
    },
    "which_of_candidates": {
        "en": "Which document do you mean? More than one fits: {candidates}.",
        "hans": "您指的是哪份文件？符合的不止一份：{candidates}。",
        "hant": "您指的是哪份文件？符合的不止一份：{candidates}。",
    },
    "which_to_summarize": {
        "en": "Which document should I summarize? The question names none of the {count} documents: {shown}.",
        "hans": "要总结哪份文件？问题没有指明 {count} 份文件中的任何一份：{shown}。",
        "hant": "要總結哪份文件？問題沒有指明 {count} 份文件中的任何一份：{shown}。",
    },
    "and_more": {
        "en": "{shown} and {more} more",
        "hans": "{shown} 等（另有 {more} 份）",
        "hant": "{shown} 等（另有 {more} 份）",
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
