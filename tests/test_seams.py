"""The Assistant's parts plug in: a retriever and an LLM of our own, each in place of the built one (the reader's
seam is tested in test_reader.py). Real index, real reader, real verification; only the plugged part is ours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llama_index.core.llms import CompletionResponse, CompletionResponseGen, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import Field

from rag.assistant import Assistant
from rag.retrieve.timeframe import TimeFrame
from rag.text.sentences import sentence_spans
from rag.types import Answer, AnswerPiece, Article, Filters, Passage


class WholeArticleRetriever:
    """A retriever of our own: every article holding one of the query's words of five letters or more, whole, as
    one passage, most matching words first."""

    def __init__(self, articles: Mapping[str, Article]) -> None:
        self.articles = dict(articles)
        self.queries: list[str] = []

    def run(self, query: str, top_k: int, filters: Filters | None = None, frame: TimeFrame | None = None
            ) -> list[Passage]:
        self.queries.append(query)
        words = {w.lower() for w in re.findall(r"\w{5,}", query)}
        scored = [(sum(w in a.text.lower() for w in words), a) for a in self.articles.values()]
        return [Passage(doc_id=a.id, chunk_id=f"{a.id}#whole", text=a.text, start_char=0, end_char=len(a.text),
                        score=float(n), title=a.title, source=a.source, published=a.published)
                for n, a in sorted(scored, key=lambda x: -x[0]) if n][:top_k]


def test_another_retriever_plugs_in(tmp_path: Path, corpus_dir: Path) -> None:
    with Assistant(index_dir=tmp_path / "index") as built:
        built.ingest([corpus_dir])
        articles = {d.doc_id: built.article(d.doc_id) for d in built.documents()}
    retriever = WholeArticleRetriever({k: v for k, v in articles.items() if v is not None})
    with Assistant(index_dir=tmp_path / "index", retriever=retriever) as assistant:
        answer = assistant.ask("Who requested CSTO troops?")
        assert retriever.queries == ["Who requested CSTO troops?"]
        assert not answer.abstained and "Tokayev" in answer.text
        c = answer.citations[0]
        assert articles[c.doc_id] is not None and articles[c.doc_id].text[c.start_char:c.end_char] == c.quote
        # The passage handed on is the retriever's own whole article.
        assert [p.chunk_id for p in answer.passages] == [f"{c.doc_id}#whole"]
        assert assistant.ask("Who won the xylophone championship?").abstained  # nothing retrieved: refused


class QuotingLLM(CustomLLM):
    """An LLM of our own: answers by copying the sentence of its sources that holds most of the question's words
    of five letters or more (two at least), cited with that source's number; "NOT IN SOURCES" when none does."""

    prompts: list[str] = Field(default_factory=list)  # a pydantic field: one list per instance

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="quoting-llm")

    def _reply(self, prompt: str) -> str:
        self.prompts.append(prompt)
        question = prompt.rsplit("Question:", 1)[-1].split("\n")[0]
        words = {w.lower() for w in re.findall(r"\w{5,}", question)}
        best, cited = 0, ""
        for number, body in re.findall(r"\[(\d+)\][^\n]*\n<<<\n(.*?)\n>>>", prompt, re.DOTALL):
            for start, end in sentence_spans(body):
                found = sum(w in body[start:end].lower() for w in words)
                if found > best:
                    best, cited = found, f"{body[start:end].strip()} [{number}]"
        return cited if best >= 2 else "NOT IN SOURCES"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._reply(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        reply = self._reply(prompt)
        for i in range(0, len(reply), 5):
            yield CompletionResponse(text=reply[: i + 5], delta=reply[i:i + 5])


def test_another_llm_plugs_in(tmp_path: Path, corpus_dir: Path) -> None:
    llm = QuotingLLM()
    with Assistant(index_dir=tmp_path / "index", llm=llm) as assistant:
        assistant.ingest([corpus_dir])
        events = list(assistant.ask_stream("Which TV channel aired the words of Osipenko?"))
        answer = events[-1]
        assert isinstance(answer, Answer) and all(isinstance(e, AnswerPiece) for e in events[:-1])
        assert answer.backend == "quoting-llm" and not answer.fallback and llm.prompts
        assert not answer.abstained and "Osipenko" in answer.text
        # Verified against its source and cited to the exact span of the article.
        c = answer.citations[0]
        article = assistant.article(c.doc_id)
        assert article is not None and article.text[c.start_char:c.end_char] == c.quote
        assert "".join(e.text for e in events[:-1]) == answer.text
        assert assistant.ask("Who won the xylophone championship?").abstained
        extractive = assistant.ask("Which TV channel aired the words of Osipenko?", backend="extractive")
        assert extractive.backend == "extractive"
