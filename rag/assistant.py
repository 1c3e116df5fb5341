"""Assistant: the public Python API. Opens (or creates) an index, ingests files, answers questions."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import ConfigError, IndexMismatchError, RagError
from rag.generate.backends import describe, make_llm
from rag.generate.grounded import AnswerGenerator, ClaimVerifier, GroundedGenerator
from rag.index.catalog import CATALOG_FILE, SCHEMA_VERSION, Catalog, DocumentSummary
from rag.index.embed import (
    BUNDLED_MODEL,
    SMALL_MARK,
    Encoder,
    TextEncoder,
    choose_backend,
    choose_chunk_encoder,
    is_bundled,
    model_id,
)
from rag.index.leads import LeadRanker, leads_wanted
from rag.index.small_embed import SmallEncoder
from rag.index.static_embed import StaticEncoder
from rag.index.store import VectorIndex
from rag.reading import Reader, Reading, Retrieval
from rag.reading.compose import ExtractiveAnswerer
from rag.reading.rerank import SentenceRanker, rerank_passages
from rag.retrieve.dedupe import collapse_duplicates
from rag.retrieve.hybrid import PassageRetriever, Retriever, standalone_query, widen_passages
from rag.retrieve.timeframe import TimeFrame, date_span, time_frame
from rag.text.language import english_only_notice
from rag.types import Answer, AnswerPiece, Article, Filters, IngestReport, Passage

MAX_QUESTION_CHARS = 2000
EMPTY_QUESTION = "Ask a question about the articles in the corpus."
# Terminal escape sequences, then C0/C1 controls, bidi overrides and zero-width characters: none carries meaning in
# a question, and each can hide words from the keyword search.
_ESCAPE_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _clean_text(text: str) -> str:
    """Printable text: lone surrogates (which no encoder accepts) become U+FFFD, controls become spaces."""
    text = str(text or "").encode("utf-8", "replace").decode("utf-8") if text else ""
    return _CONTROL_RE.sub(" ", _ESCAPE_RE.sub(" ", text)).strip()


def _full_day(prefix: str) -> str:
    """The last day an ISO prefix covers ("2022-07" -> "2022-07-31"): a question asked as of a month or year is
    asked at its end."""
    span = date_span(prefix)
    if span is None:
        raise ValueError(f"not an ISO date: {prefix!r}")
    return span[1].isoformat()


MAX_TOP_K = 100  # passages to read: more is no answer a reader or an LLM can use, and a pool Chroma refuses


def _checked_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise ConfigError(f"top_k is how many passages are read: from 1 to {MAX_TOP_K}, not {top_k:g}")
    return int(top_k)


def too_long(question: str) -> str:
    return (f"The question is {len(question):,} characters long; ask it in at most {MAX_QUESTION_CHARS:,} "
            "characters.")


class Assistant:
    """Grounded question answering over an index of news articles.

    Usage: `Assistant(index_dir=".rag").ingest(["corpus/"])`, then `.ask("Who requested CSTO troops?")`.

    Its parts are built from the settings unless given: `retriever` (a rag.retrieve.hybrid.PassageRetriever),
    `reader` (a rag.reading.Reader, or the name of one), `generator` (a rag.generate.grounded.AnswerGenerator that writes
    answers instead of the extractive answerer), or `llm` (any llama-index LLM, which the default
    GroundedGenerator prompts and verifies). With a generator or an llm, answers come from it unless
    `backend="extractive"` is asked for. docs/ARCHITECTURE.md shows each seam with an example.
    """

    def __init__(self, index_dir: str | os.PathLike[str] | None = None, *, settings: Settings | None = None,
                 retriever: PassageRetriever | None = None, reader: Reader | str | None = None,
                 generator: AnswerGenerator | None = None, llm: Any = None, **overrides: Any) -> None:
        if generator is not None and llm is not None:
            raise ValueError("give a generator or an llm, not both (the generator brings its own LLM)")
        if isinstance(reader, str):  # the setting's name ("trained", "lexical"), as any other override
            overrides["reader"], reader = reader, None
        base = settings if settings is not None else Settings.from_env()
        self.settings = base.with_overrides(index_dir=index_dir, **overrides)
        s = self.settings
        self.catalog = Catalog(Path(s.index_dir) / CATALOG_FILE)
        recorded = self.catalog.meta("embed_model")
        chunk_kind = choose_chunk_encoder(s.chunk_encoder, recorded, s.embed_model)
        with_leads = leads_wanted(s.lead_vectors)
        backend = choose_backend(s.embed_backend, recorded if chunk_kind == "transformer" else None, s.embed_model)
        # An index keeps the length its vectors were made with: the setting applies to new indexes, and one built
        # before the setting existed read whole texts.
        max_tokens = self.catalog.meta("embed_max_tokens") or ("0" if recorded else str(s.embed_max_tokens))
        # The transformer reads sentences (re-ranking, verification) and, with chunk_encoder=transformer, chunks.
        self.embed_model = Encoder(s.embed_model, batch_size=s.embed_batch_size, backend=backend,
                                   cache_dir=str(Path(s.index_dir) / "onnx"), max_tokens=int(max_tokens))
        # What embeds chunks, and the question for the dense search: the static table does both (its own space);
        # the small distilled encoder embeds chunks into the transformer's space, so the transformer embeds the
        # question.
        self.chunk_encoder: TextEncoder = self.embed_model
        self.query_encoder: TextEncoder = self.embed_model
        if chunk_kind == "static":
            self.chunk_encoder = self.query_encoder = StaticEncoder()
        elif chunk_kind == "small":
            if not is_bundled(s.embed_model):
                if recorded and SMALL_MARK in recorded:
                    raise IndexMismatchError(
                        f"this index holds chunk vectors of the small encoder ({recorded!r}), in the bundled "
                        f"{BUNDLED_MODEL}'s space, but embed_model={s.embed_model!r} is configured: re-ingest into a "
                        "new index directory, or configure the model the index was built with")
                raise ConfigError(f"chunk_encoder=small embeds chunks into the bundled {BUNDLED_MODEL}'s space; with "
                                  f"embed_model={s.embed_model!r} use chunk_encoder=transformer or static")
            self.chunk_encoder = SmallEncoder()
        embed_id = self.chunk_encoder.model_name
        self.catalog.ensure_meta(
            {"embed_model": embed_id, "schema": SCHEMA_VERSION, "chroma": s.chroma_url or "embedded",
             "collection": s.collection, "embed_max_tokens": max_tokens}
        )
        self.leads = LeadRanker(self.catalog, self.embed_model) if with_leads else None
        if self.leads is not None:  # the model, not its backend: int8 and fp32 lead vectors rank articles alike
            self.catalog.ensure_meta({"lead_model": model_id(s.embed_model)})
        self.vectors = VectorIndex(Path(s.index_dir), s.collection, embed_id, s.chroma_url, s.chroma_timeout_s)
        self._given_retriever = retriever
        self.retriever: PassageRetriever = (
            retriever if retriever is not None else
            Retriever(self.query_encoder, self.vectors, self.catalog, mode=s.retrieval, leads=self.leads))
        self.ranker = SentenceRanker(self.embed_model, document_frequencies=self.catalog.document_frequencies,
                                     sentences_embedded=s.sentences_embedded)
        self._given_reader = reader  # a given reader is its owner's to close
        self.reader: Reader = reader if reader is not None else make_reader(s, self.ranker)
        self.answerer = make_answerer(s, self.reader)
        self.preferred_sources = tuple(x.strip() for x in s.preferred_sources.split(",") if x.strip())
        self._llm: Any = llm  # the LLM backend, made on first use unless given
        self._llm_lock = threading.Lock()
        self._given_generator = generator
        self._llm_given = llm is not None
        # What answers when `ask` names no backend: the given generator or LLM, else the setting.
        self.answer_backend = (s.answer_backend if generator is None and llm is None else
                               generator.where if generator is not None else _given_llm_name(llm))

    # -- ingestion -----------------------------------------------------------------------------------
    def ingest(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], sync: bool = False,
               progress: bool | None = None, on_file: Callable[[float, int], None] | None = None,
               stop: threading.Event | None = None) -> IngestReport:
        """Add or update the articles in these files, folders, and feed or page URLs; with sync, drop those whose
        files are gone (a URL's documents stay).

        `progress`: a terminal progress bar (default: when stderr is a TTY); `on_file(done, total)` after each
        source; `stop`: once set, the run ends after the source being read, what was read committed."""

        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        try:
            return self._ingestor().run(paths, sync=sync, progress=progress, on_file=on_file, stop=stop)
        finally:
            self.reader.clear_caches()

    def resync(self, on_file: Callable[[float, int], None] | None = None) -> IngestReport:
        """Re-read every file the index knows: changed files re-ingested (unchanged ones skipped by size and
        mtime), documents whose files are gone removed."""
        known = [r.path for r in self.catalog.file_records() if Path(r.path).exists()]
        return self.ingest(known, sync=True, progress=False, on_file=on_file)

    def remove(self, doc_ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many were in the index."""
        try:
            return self._ingestor().remove_documents(doc_ids)
        finally:
            self.reader.clear_caches()

    def _ingestor(self) -> Any:
        from ingest.fetch import FetchPolicy
        from ingest.load import Columns
        from ingest.pipeline import Ingestor
        from rag.index.llama_embedding import SentenceEmbedding
        from rag.index.writer import IndexWriter

        s = self.settings
        embedding = SentenceEmbedding(embed_batch_size=s.embed_batch_size, encoder=self.chunk_encoder)
        return Ingestor(Path(s.index_dir), IndexWriter(self.catalog, self.vectors), embedding,
                        chunk_max_tokens=s.chunk_max_tokens, chunk_overlap_sentences=s.chunk_overlap_sentences,
                        max_file_bytes=s.max_file_bytes, max_article_chars=s.max_article_chars,
                        batch_chars=s.ingest_batch_chars, min_free_bytes=s.min_free_bytes,
                        fetch_policy=FetchPolicy(delay_s=s.fetch_delay_s, timeout_s=s.fetch_timeout_s,
                                                 max_bytes=s.fetch_max_bytes, allow_private=s.fetch_allow_private,
                                                 max_entries=s.fetch_max_entries),
                        columns=Columns.parse(s.record_columns),
                        lead_encoder=self.embed_model if self.leads is not None else None)

    # -- questions -----------------------------------------------------------------------------------
    def search(self, question: str, history: Sequence[tuple[str, str]] = (), top_k: int | None = None,
               filters: Filters | None = None) -> list[Passage]:
        """The top_k passages for a question: hybrid retrieval of a candidate pool, near-duplicates collapsed,
        re-ranked by their best sentence."""
        return list(self.retrieve(question, history, top_k, filters).top)

    def retrieve(self, question: str, history: Sequence[tuple[str, str]] = (), top_k: int | None = None,
                 filters: Filters | None = None, query: str = "") -> Retrieval:
        """Retrieval and reading, before an answer is composed: the pool, the top_k passages, their articles and
        the reader's scored sentences (what `ask` answers from, and what evals and tuning measure). `query`: the
        question made standalone (default: the heuristic of rag.retrieve.hybrid.standalone_query)."""
        question = _clean_text(question)[:MAX_QUESTION_CHARS]
        history = [(_clean_text(str(q))[:MAX_QUESTION_CHARS], _clean_text(str(a))) for q, a in history]
        top_k = _checked_top_k(top_k or self.settings.top_k)
        query = query or standalone_query(question, history)
        if not re.search(r"\w", question):
            return Retrieval(question, query, (), (), {}, Reading((), 0.0))
        frame = self.time_frame(question, query, filters)
        n = max(self.settings.candidate_pool, top_k)
        # A period the question names is preferred, not required: the prior lifts its articles, and an older page
        # that answers still competes (news pages often tell of a week's event days before or after it).
        pool = self.retriever.run(query, n, filters, frame)
        pool = collapse_duplicates(pool, self.preferred_sources, frame.as_of if frame else None)
        return self._read(question, query, pool, top_k, frame, self.settings.passage_context_chars)

    def time_frame(self, question: str, query: str = "", filters: Filters | None = None) -> TimeFrame | None:
        """The period the question points to, as of `filters.as_of` (else today); None with time_prior off.
        A follow-up's own time words win over the previous question's."""
        if not self.settings.time_prior:
            return None
        as_of = date.fromisoformat(_full_day(filters.as_of)) if filters and filters.as_of else date.today()
        frame = time_frame(question, as_of)
        return frame if frame.kind or not query or query == question else time_frame(query, as_of)

    def _read(self, question: str, query: str, pool: Sequence[Passage], top_k: int,
              frame: TimeFrame | None = None, context_chars: int = 0) -> Retrieval:
        articles = self.catalog.articles(p.doc_id for p in pool)
        # A follow-up is matched with the previous question's words; the answer type is the question's own.
        reading = self.reader.read(question, pool, articles, query)
        # The reader reads the pool as retrieved; the top passages handed on (to an LLM, a caller, the page)
        # carry their neighbouring sentences too.
        top = widen_passages(rerank_passages(pool, reading.sentences), articles, context_chars, limit=top_k)
        return Retrieval(question, query, tuple(pool), tuple(top), articles, reading, frame)

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), top_k: int | None = None,
            filters: Filters | None = None, passages: Sequence[Passage] | None = None,
            backend: str | None = None) -> Answer:
        """Answer from the corpus with citations, or abstain. `history` is [(question, answer), ...].

        `passages`: answer from these (e.g. what `search` returned, then narrowed by the caller) instead of
        retrieving. `backend`: "extractive" or the configured LLM backend (default: the given generator or llm,
        else settings.answer_backend).
        Timings: `retrieve` covers retrieval and sentence re-ranking, `answer` the composing (or generating)."""
        answer = None
        for event in self.ask_stream(question, history, top_k, filters, passages, backend):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: Sequence[tuple[str, str]] = (), top_k: int | None = None,
                   filters: Filters | None = None, passages: Sequence[Passage] | None = None,
                   backend: str | None = None) -> Iterator[AnswerPiece | Answer]:
        """Like `ask`, streamed: the answer's pieces as they are ready (each cited sentence; an LLM's only once
        verified against its citations), then the final Answer, whose text is the pieces' text joined."""
        started = time.perf_counter()
        question = _clean_text(question)
        refusal = EMPTY_QUESTION if not re.search(r"\w", question) else (
            too_long(question) if len(question) > MAX_QUESTION_CHARS else "")
        if refusal:
            yield AnswerPiece(refusal)
            yield Answer(question=question[:MAX_QUESTION_CHARS], text=refusal, abstained=True,
                         timings_ms={"retrieve": 0.0, "answer": 0.0, "total": 0.0})
            return
        k = _checked_top_k(top_k or self.settings.top_k)
        history = [(_clean_text(q)[:MAX_QUESTION_CHARS], _clean_text(a)) for q, a in history]
        backend = backend or self.answer_backend
        generator, problem = self._generator(backend)
        query = standalone_query(question, history)
        if generator is not None and history:
            try:
                query = generator.condense(question, history) or query
            except RagError as exc:
                generator, problem = None, str(exc)
        if passages is None:
            found = self.retrieve(question, history, k, filters, query)
        else:
            found = replace(self._read(question, query, passages, len(passages)), top=tuple(passages))
        top, articles = list(found.top), found.articles
        retrieved = time.perf_counter()

        def extractive(reason: str = "") -> Iterator[AnswerPiece | Answer]:
            for event in self.answerer.stream(question, found.pool, articles, found.reading):
                yield replace(event, passages=tuple(top), fallback=reason) if isinstance(event, Answer) else event

        answer: Answer | None = None
        events = (extractive(problem) if generator is None else
                  generator.stream(query if history else question, top, articles, extractive,
                                   found.reading.relevance, self.answerer.min_support))
        for event in events:
            if isinstance(event, Answer):
                answer = event
            else:
                yield event
        assert answer is not None
        done = time.perf_counter()
        timings = {
            "retrieve": round((retrieved - started) * 1000, 1),
            "answer": round((done - retrieved) * 1000, 1),
            "total": round((done - started) * 1000, 1),
        }
        yield replace(answer, question=question, passages=tuple(top), timings_ms=timings,
                      period=_period(found.frame, answer),
                      notice=english_only_notice(question) if answer.abstained else "")

    def _generator(self, backend: str) -> tuple[AnswerGenerator | None, str]:
        """(the LLM answerer for this backend, "") or (None, why the extractive answerer stands in)."""
        if backend == "extractive":
            return None, ""
        if backend != self.answer_backend:
            return None, f"the {backend} backend is not configured (RAG_ANSWER_BACKEND)"
        if self._given_generator is not None:
            return self._given_generator, ""
        with self._llm_lock:
            if self._llm is None:
                try:
                    self._llm = make_llm(self.settings)
                except RagError as exc:
                    return None, str(exc)
        verifier = ClaimVerifier(self.embed_model)
        s = self.settings
        # The sources' share of the context window, at a conservative 3 characters a token: what is left after the
        # answer's tokens and about 600 for the rules, the question and the sources' headings.
        source_chars = max(2_000, 3 * (s.llm_context_window - s.llm_max_tokens - 600))
        where = self.answer_backend if self._llm_given else describe(s)
        return GroundedGenerator(self._llm, verifier, where, s.max_answer_sentences, source_chars), ""

    # -- the corpus ----------------------------------------------------------------------------------
    def documents(self) -> list[DocumentSummary]:
        return self.catalog.documents()

    def sources(self) -> list[str]:
        """The distinct sources of the indexed articles (for filters)."""
        return self.catalog.sources()

    def article(self, doc_id: str) -> Article | None:
        return self.catalog.article(doc_id)

    def stats(self) -> dict[str, int]:
        docs, chunks = self.catalog.counts()
        return {"documents": docs, "chunks": chunks}

    def close(self) -> None:
        if isinstance(self.retriever, Retriever) and self.retriever is not self._given_retriever:
            self.retriever.close()  # a given retriever is its owner's to close
        if self.reader is not self._given_reader:
            self.reader.close()
        self.vectors.close()
        self.catalog.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _given_llm_name(llm: Any) -> str:
    """A given LLM's name, as answers it writes say (Answer.backend): its model's name, else its class."""
    metadata = getattr(llm, "metadata", None)
    return str(getattr(metadata, "model_name", "") or type(llm).__name__)


def _period(frame: TimeFrame | None, answer: Answer) -> str:
    """The period the answer drew on, when the question named one and the answer cites a dated article; when no
    cited article is of that period (the period is preferred, not required: "the new prime minister" may only be
    in older articles), it says so and gives their dates."""
    if frame is None or not frame.kind or answer.abstained or not any(c.published for c in answer.citations):
        return ""  # no kind: the question named no period (describe() is "")
    described = frame.describe()
    dated = sorted({c.published for c in answer.citations if c.published})
    if any(frame.days_outside(d) == 0 for d in dated):
        return described
    return f"{described}; none cited is from then: {', '.join(dated)}"


def make_reader(settings: Settings, ranker: SentenceRanker) -> Reader:
    """The reader `settings.reader` names: the trained cross-encoder (models/reader) or the lexical ranker."""
    from rag.reading.spans import SpanModel
    from rag.reading.trained import PairModel, TrainedReader, default_model_dir

    model_dir = Path(settings.reader_model) if settings.reader_model else default_model_dir()
    # The short answer and the span score come from the reader model's own span head unless RAG_SPAN_MODEL names
    # another folder (models/span: the short-answer model the reader was trained from; README "Reading").
    span_dir = Path(settings.span_model) if settings.span_model else model_dir
    own_spans = span_dir.resolve() == model_dir.resolve()
    if settings.reader == "lexical":
        from rag.reading.lexical import MODEL_WEIGHT, PAIR_THREADS, SPAN_WEIGHT, LexicalReader

        weight = MODEL_WEIGHT if settings.model_weight is None else settings.model_weight
        span_weight = SPAN_WEIGHT if settings.span_weight is None else settings.span_weight
        # With a second model's span score, the two models read the same sentences side by side
        # (LexicalReader._reorder); one model reads them once, on every core.
        side_by_side = settings.short_answers == "span" and span_weight > 0 and not own_spans
        threads = PAIR_THREADS if side_by_side else 0
        spans = PairModel(model_dir, threads) if settings.short_answers != "patterns" else None
        short: PairModel | None = None
        if settings.short_answers == "span":
            short = spans if own_spans else SpanModel(span_dir, threads)
        return LexicalReader(ranker, spans=spans, model_weight=weight, short=short, span_weight=span_weight)
    short = SpanModel(span_dir) if settings.short_answers == "span" and not own_spans else None
    return TrainedReader(ranker, model_dir, sentences_read=settings.reader_sentences or None, short=short)


def make_answerer(settings: Settings, reader: Reader) -> ExtractiveAnswerer:
    """The answer's composition for this reader: its refusal threshold (unless `min_support` is set), its
    margins for a second sentence, and the rules `answer_rules` names ("default": the reader's own set)."""
    if settings.answer_rules == "default":
        rules: Sequence[str] = reader.default_rules
    else:
        rules = [r.strip() for r in settings.answer_rules.split(",") if r.strip() and r.strip() != "none"]
    min_support = reader.min_support if settings.min_support is None else settings.min_support
    return ExtractiveAnswerer(min_support, settings.max_answer_sentences, reader.second_margin, reader.next_margin,
                              rules)
