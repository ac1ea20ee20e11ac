"""rag's checked answers behind llama-index's query and chat engine interfaces.

Both answer exactly as `RAG.ask` / `RAG.chat` / `RAG.stream` do (same retrieval, same backend, same check);
what changes is the wrapping:

* ``response.response``: the answer's text with its ``[n]`` markers;
* ``response.source_nodes``: the cited passages, one per citation in marker order (``[n]`` is
  ``source_nodes[n - 1]``), each with its supporting ``quote`` and ``quote_start``/``quote_end`` in its
  metadata; empty when rag abstained;
* ``response.metadata["answer"]``: rag's `Answer`; ``metadata["retrieved"]``: every retrieved passage as nodes.

Streaming yields the text as it is written. With a model backend the checked text can differ from the
streamed draft (sentences marked ``[unverified]``): once the stream ends, ``metadata["answer"]`` holds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.chat_engine.types import AgentChatResponse, BaseChatEngine, StreamingAgentChatResponse
from llama_index.core.query_engine import CustomQueryEngine
from pydantic import Field

from rag.llamaindex.nodes import cited_nodes, to_node
from rag.types import Answer


def _metadata(answer: Answer) -> dict[str, Any]:
    return {"answer": answer, "retrieved": [to_node(p) for p in answer.passages]}


class RagQueryEngine(CustomQueryEngine):
    """`RAG.ask` as a llama-index query engine (see the module docstring for what a response holds).

    Example:
        >>> engine = rag.as_query_engine()  # doctest: +SKIP
        >>> response = engine.query("How many employees does HashKey have?")  # doctest: +SKIP
        >>> str(response), response.source_nodes[0].node.metadata["quote"]  # doctest: +SKIP
    """

    rag: Any = Field(description="The `RAG` that answers.", exclude=True)
    k: int | None = Field(None, description="Passages retrieved per question; settings.top_k when None.")
    streaming: bool = Field(False, description="Return a StreamingResponse whose response_gen yields the text.")
    documents: list[str] | None = Field(None, description="Answer only from these documents (`rag.retrieval.scope`).")
    folder: str | None = Field(None, description="Answer only from the documents inside this folder.")

    def custom_query(self, query_str: str) -> Response | StreamingResponse:
        if not self.streaming:
            answer = self.rag.ask(query_str, k=self.k, documents=self.documents, folder=self.folder)
            return Response(answer.text, cited_nodes(answer), _metadata(answer))

        def deltas() -> Generator[str, None, None]:
            for event in self.rag.stream(query_str, k=self.k, documents=self.documents, folder=self.folder):
                if isinstance(event, str):
                    yield event
                else:  # the checked answer comes last: fill in what the response promises
                    response.source_nodes.extend(cited_nodes(event))
                    assert response.metadata is not None
                    response.metadata.update(_metadata(event))

        response = StreamingResponse(response_gen=deltas(), source_nodes=[], metadata={})
        return response

    async def acustom_query(self, query_str: str) -> Response | StreamingResponse:
        return await asyncio.to_thread(self.custom_query, query_str)


class RagChatEngine(BaseChatEngine):
    """`RAG.chat` as a llama-index chat engine: a follow-up ("and today?") is made standalone from the
    conversation before retrieving, and every answer is checked. It keeps the conversation itself (the checked
    answers, not the streamed drafts); ``chat_history`` passed to a call replaces it.

    Args:
        rag: the `RAG` that answers.
        k: passages retrieved per message; settings.top_k when None.
        chat_history: an earlier conversation to continue.

    Example:
        >>> chat = rag.as_chat_engine()  # doctest: +SKIP
        >>> chat.chat("How large was HashKey's insurance coverage at the start?").response  # doctest: +SKIP
        >>> chat.chat("and today?").metadata["answer"].query  # the standalone question searched  # doctest: +SKIP
    """

    def __init__(
        self,
        rag: Any,
        k: int | None = None,
        chat_history: list[ChatMessage] | None = None,
        documents: list[str] | None = None,
        folder: str | None = None,
    ):
        self.rag = rag
        self.k = k
        self.documents, self.folder = documents, folder  # only these documents (`rag.retrieval.scope`)
        self._history: list[ChatMessage] = list(chat_history or [])
        self.last_answer: Answer | None = None  # the checked answer of the latest message (also after a stream)

    @property
    def chat_history(self) -> list[ChatMessage]:
        return list(self._history)

    def reset(self) -> None:
        self._history = []
        self.last_answer = None

    def _messages(self, chat_history: list[ChatMessage] | None) -> list[dict[str, str]]:
        """The conversation so far in the messages format `RAG.chat` reads."""
        if chat_history is not None:
            self._history = list(chat_history)
        return [{"role": m.role.value, "content": m.content or ""} for m in self._history]

    def _remember(self, message: str, answer: Answer) -> None:
        self.last_answer = answer
        self._history += [
            ChatMessage(role=MessageRole.USER, content=message),
            ChatMessage(role=MessageRole.ASSISTANT, content=answer.text),
        ]

    def chat(self, message: str, chat_history: list[ChatMessage] | None = None) -> AgentChatResponse:
        history = self._messages(chat_history)
        answer = self.rag.chat(message, history, k=self.k, documents=self.documents, folder=self.folder)
        self._remember(message, answer)
        return AgentChatResponse(response=answer.text, source_nodes=cited_nodes(answer), metadata=_metadata(answer))

    def stream_chat(self, message: str, chat_history: list[ChatMessage] | None = None) -> StreamingAgentChatResponse:
        history = self._messages(chat_history)
        response = StreamingAgentChatResponse(is_writing_to_memory=False)

        def chat_stream() -> Generator[ChatResponse, None, None]:
            text = ""
            scope = {"documents": self.documents, "folder": self.folder}
            for event in self.rag.stream(message, history=history, k=self.k, **scope):
                if isinstance(event, str):
                    text += event
                    yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=event)
                else:
                    response.source_nodes.extend(cited_nodes(event))
                    self._remember(message, event)

        response.chat_stream = chat_stream()
        return response

    async def achat(self, message: str, chat_history: list[ChatMessage] | None = None) -> AgentChatResponse:
        return await asyncio.to_thread(self.chat, message, chat_history)

    async def astream_chat(
        self, message: str, chat_history: list[ChatMessage] | None = None
    ) -> StreamingAgentChatResponse:
        stream = self.stream_chat(message, chat_history)
        chunks = stream.chat_stream
        assert chunks is not None

        async def achat_stream() -> AsyncGenerator[ChatResponse, None]:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                yield chunk

        stream.chat_stream, stream.achat_stream = None, achat_stream()
        return stream
