"""Settings: one frozen object, built from explicit values or (at the edges only) from RAG_* env vars."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

DEFAULT_INDEX_DIR = ".rag"
RETRIEVAL_MODES = ("hybrid", "dense", "keyword")
# extractive: the offline default. openai: any OpenAI-compatible server (llama.cpp's, vLLM, LM Studio, OpenAI);
# ollama: an Ollama server; llama-cpp: a GGUF file run in-process (the [local-llm] extra).
ANSWER_BACKENDS = ("extractive", "openai", "ollama", "llama-cpp")
READERS = ("trained", "lexical")
SHORT_ANSWERS = ("span", "model", "patterns")
# Chosen by `python -m evals.tune_embedded` on the tuning splits (the fewest within 0.005 accuracy and 0.01
# refusals of embedding every sentence): SQuAD 2.0 tuning accuracy 0.815 -> 0.818, refusals 0.217 -> 0.210,
# latency p50 135 -> 81 ms with a cold sentence cache; RealTime QA's June questions unchanged (README, "Reading").
SENTENCES_EMBEDDED = 8
_OPTIONAL_FLOATS = frozenset({"min_support", "model_weight", "span_weight"})  # None by default: parsed as floats


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path(DEFAULT_INDEX_DIR)
    # Chroma: embedded PersistentClient under index_dir unless a server URL is given.
    chroma_url: str = ""
    collection: str = "articles"
    chroma_timeout_s: float = 30.0  # how long to wait for a Chroma server's reply
    # Embeddings: "" means the bundled all-MiniLM-L6-v2; otherwise a sentence-transformers name or path.
    embed_model: str = ""
    # auto: what the index was built with; for a new index the int8 ONNX export (rag/index/onnx_embed.py) where
    # onnxruntime is installed, else torch. torch or onnx force one (an index built with the other is refused).
    embed_backend: str = "auto"
    embed_batch_size: int = 64
    # What embeds chunks for the dense search (the sentence re-ranker and the reader always read with the
    # transformer): small, the bundled model cut to 2 layers reading 64 word pieces and distilled into its space
    # (rag/index/small_embed.py: news ingest about a quarter of the default pipeline's time; the transformer embeds
    # the question); static, a word-piece table distilled from the bundled model (rag/index/static_embed.py: ingest
    # five times faster, news retrieval a few points worse, README "Speed, scale and deployment"), or transformer
    # (the embedding model itself). auto: what the index was built with; for a new index the transformer
    # (rag/index/embed.py, NEW_INDEX_CHUNK_ENCODER: small is the faster ingest, a little less often right).
    chunk_encoder: str = "auto"
    # One transformer vector per article, of its title and opening words, as a third list in retrieval's fusion
    # (rag/index/leads.py), at a chunk's embedding cost per article: on or off. On held-out news with static chunk
    # vectors it restored the transformer's right-article-first rate; on SQuAD's tuning questions it lowered
    # retrieval at every weight, so it is off unless asked for. Changing it re-embeds the index on its next ingest.
    lead_vectors: str = "off"
    # Word pieces of each text the model reads (0: the model's own limit, 256 for MiniLM). A new index records it
    # and keeps it; ingest embeds 160-token chunks, whose first 128 word pieces hold nearly all a dense match needs
    # (keyword search and sentence re-ranking read every word): SQuAD's answer accuracy was the same, ingest 1.8x
    # faster (README, Speed and scale).
    embed_max_tokens: int = 128
    # Chunking, in tiktoken (cl100k) tokens.
    chunk_max_tokens: int = 160
    chunk_overlap_sentences: int = 1
    # Ingestion limits.
    max_file_bytes: int = 50 * 1024 * 1024
    # One article (a file, or a JSONL line) over this is skipped: 1M characters is a book, not a news story, and
    # would take minutes to embed.
    max_article_chars: int = 1_000_000
    ingest_batch_chars: int = 400_000  # article characters embedded and committed together
    # Which fields of a CSV / Parquet / JSONL record hold what: FIELD=COLUMN pairs, comma-separated, put before the
    # defaults (ingest/load.py Columns: text, content, body; title, headline; url, link; date, published; ...).
    record_columns: str = ""
    # Feeds and pages (ingest/fetch.py): seconds between two requests to one host (robots.txt's Crawl-delay if
    # longer), the timeout of a connection and of each read, the largest response, and whether loopback and
    # private addresses may be fetched (never by default: a feed must not reach the machine's own services).
    fetch_delay_s: float = 1.0
    fetch_timeout_s: float = 20.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    fetch_allow_private: bool = False
    fetch_max_entries: int = 100  # a feed's entries read in one poll; the rest wait for the next
    # Ingestion stops with "the disk is full" before a batch when less than this (plus 4x the batch's text) is free
    # on the index's filesystem: embedded Chroma accepts writes it then cannot apply on a full disk, and its reads
    # fail until space is freed, so it must never get there.
    min_free_bytes: int = 64 * 1024 * 1024
    # Retrieval and answering: `retrieval` is hybrid (dense + BM25, fused), dense or keyword;
    # `candidate_pool` passages are re-ranked by their sentences and the best `top_k` kept.
    retrieval: str = "hybrid"
    candidate_pool: int = 8
    top_k: int = 5
    # Sentences of the pool the re-ranker embeds per question: the best by their other features (words, names,
    # type, rank); the rest are scored without reading them with the model. 0: every sentence (about 50 here).
    sentences_embedded: int = SENTENCES_EMBEDDED
    # The top passages (what `search` returns and an LLM backend reads) carry the whole sentences of their article
    # within this many characters before and after the retrieved chunk (overlapping ones of one article merge).
    # The extractive reader reads the pool as retrieved: widened, its best sentence was no better on the tuning
    # split and reading took up to 55% longer (README, "Time").
    passage_context_chars: int = 600
    max_answer_sentences: int = 2
    # Reading (rag/reading/): "lexical", the hand-fitted ranker and abstention (the default: measured better on
    # the held-out splits than the trained reader alone, README "Reading"), or "trained", the cross-encoder of
    # models/reader (another folder with `reader_model`) choosing the sentence and deciding refusals.
    # `reader_sentences`: how many sentences the trained reader reads (0: its calibrated number,
    # models/reader/calibration.json).
    reader: str = "lexical"
    reader_model: str = ""
    reader_sentences: int = 0
    # The short answer inside the best sentence: "span", a span head whose best-span score also re-orders the
    # lexical reader's best sentences: the reader model's own, or another folder's with `span_model` (models/span,
    # the short-answer model the reader was trained from; README "Reading"); "model", the reader model's span head
    # without that re-ordering; "patterns", the number/date/name patterns of rag/reading/short.py (no model: the
    # lexical reader keeps the ranker's order).
    short_answers: str = "span"
    span_model: str = ""
    # The lexical reader with the model ("model" short answers): the weight of the model's answer logit in
    # re-ordering the ranker's best sentences (None: the fitted weight, rag/reading/lexical.py; 0: the ranker's
    # order alone).
    model_weight: float | None = None
    # ... and with "span", the weight of the span head's best-span score in the same re-ordering
    # (None: the fitted weight; 0: the reader model's logit alone).
    span_weight: float | None = None
    # Abstain when the reader's probability that the best sentence answers is below this. None: the reader's own
    # threshold, fitted by `python -m evals.tune` on the tuning split (of those keeping over-refusal of the
    # answerable tuning questions within 10%, the one with the most right decisions).
    min_support: float | None = None
    # The hand-written composition rules of rag/reading/compose.py (next, naming, antecedent, neighbour), comma-separated;
    # "default": the reader's own set, "none": no rule.
    answer_rules: str = "default"
    # Time (rag/retrieve/timeframe.py): questions are asked as of Filters.as_of, else today; "this week", "in 2019" and
    # the like point at a period, and the ranking prefers articles published near it (a prior fitted on the tuning
    # split; a question with no time words is neutral). False: dates only filter.
    time_prior: bool = True
    # Near-duplicate passages (one wire story in several outlets) collapse to one: the copy published nearest
    # the question's date, or the first of these sources (comma-separated) when present.
    preferred_sources: str = ""
    # Generative answers (rag/generate/grounded.py): the backend, where it is, and how long to wait for it. Every
    # generated sentence is verified against the passage it cites; on failure the extractive answer is given.
    answer_backend: str = "extractive"
    llm_base_url: str = ""  # openai: http://127.0.0.1:8080/v1 (default: OpenAI's API); ollama: http://127.0.0.1:11434
    llm_model: str = ""  # the model name the server knows; llama-cpp: the path of the GGUF file
    llm_api_key: str = field(default="", repr=False)  # from RAG_LLM_API_KEY (or OPENAI_API_KEY); never shown
    llm_timeout_s: float = 60.0
    llm_max_tokens: int = 256
    llm_temperature: float = 0.0
    llm_context_window: int = 4096

    def __post_init__(self) -> None:
        if self.chunk_max_tokens < 16:
            raise ConfigError(f"chunk_max_tokens must be at least 16, got {self.chunk_max_tokens}")
        if self.chunk_overlap_sentences < 0:
            raise ConfigError(
                f"chunk_overlap_sentences must be >= 0, got {self.chunk_overlap_sentences}"
            )
        if self.retrieval not in RETRIEVAL_MODES:
            raise ConfigError(f"retrieval must be hybrid, dense or keyword, got {self.retrieval!r}")
        if self.candidate_pool < 1:
            raise ConfigError(f"candidate_pool must be at least 1, got {self.candidate_pool}")
        if self.passage_context_chars < 0:
            raise ConfigError(f"passage_context_chars must be 0 or more, got {self.passage_context_chars}")
        if self.fetch_delay_s < 0 or self.fetch_timeout_s <= 0 or self.fetch_max_bytes < 1:
            raise ConfigError("fetch_delay_s must be 0 or more, fetch_timeout_s and fetch_max_bytes above 0")
        if self.fetch_max_entries < 1:
            raise ConfigError(f"fetch_max_entries must be at least 1, got {self.fetch_max_entries}")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        if self.sentences_embedded < 0:
            raise ConfigError(f"sentences_embedded must be 0 (all) or more, got {self.sentences_embedded}")
        if self.reader not in READERS:
            raise ConfigError(f"reader must be one of {', '.join(READERS)}, got {self.reader!r}")
        if self.short_answers not in SHORT_ANSWERS:
            raise ConfigError(f"short_answers must be one of {', '.join(SHORT_ANSWERS)}, got {self.short_answers!r}")
        if self.model_weight is not None and self.model_weight < 0:
            raise ConfigError(f"model_weight must be 0 (the ranker's order) or more, got {self.model_weight}")
        if self.span_weight is not None and self.span_weight < 0:
            raise ConfigError(f"span_weight must be 0 (no span score) or more, got {self.span_weight}")
        if self.reader_sentences < 0:
            raise ConfigError(f"reader_sentences must be 0 (calibrated) or more, got {self.reader_sentences}")
        if self.max_answer_sentences < 1:
            raise ConfigError(f"max_answer_sentences must be at least 1, got {self.max_answer_sentences}")
        if self.max_file_bytes < 1 or self.max_article_chars < 1:
            raise ConfigError("max_file_bytes and max_article_chars must be positive")
        if self.embed_max_tokens < 0:
            raise ConfigError(f"embed_max_tokens must be 0 (the model's limit) or more, got {self.embed_max_tokens}")
        if self.embed_batch_size < 1:
            raise ConfigError(f"embed_batch_size must be at least 1, got {self.embed_batch_size}")
        if self.answer_backend not in ANSWER_BACKENDS:
            raise ConfigError(f"answer_backend must be one of {', '.join(ANSWER_BACKENDS)}, got {self.answer_backend!r}")
        if self.llm_timeout_s <= 0:
            raise ConfigError(f"llm_timeout_s must be positive, got {self.llm_timeout_s}")
        if self.llm_base_url and not self.llm_base_url.startswith(("http://", "https://")):
            raise ConfigError(f"llm_base_url must start with http:// or https://, got {self.llm_base_url!r}")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            raise ConfigError(f"chroma_url must start with http:// or https://, got {self.chroma_url!r}")

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-None values replaced."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "index_dir" in given:
            given["index_dir"] = Path(given["index_dir"])
        return replace(self, **given)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read RAG_<FIELD> variables (e.g. RAG_INDEX_DIR, RAG_TOP_K, RAG_CHROMA_URL)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RAG_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            default = getattr(cls, f.name)
            try:
                if f.name in _OPTIONAL_FLOATS:
                    values[f.name] = float(raw)
                elif isinstance(default, bool):
                    values[f.name] = raw.lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    values[f.name] = int(raw)
                elif isinstance(default, float):
                    values[f.name] = float(raw)
                elif isinstance(default, Path):
                    values[f.name] = Path(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ConfigError(f"RAG_{f.name.upper()}={raw!r} is not a valid {type(default).__name__}") from exc
        if "llm_api_key" not in values and env.get("OPENAI_API_KEY"):
            values["llm_api_key"] = env["OPENAI_API_KEY"]
        return cls(**values)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeSettings:
    """How the page is served (app.py), read once at start: the bind address (RAG_HOST, loopback by default),
    RAG_PORT, a public share link, and the login (RAG_USERNAME / RAG_PASSWORD)."""

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    no_auth: bool = False  # serve an exposed page without a login, knowingly
    username: str = ""
    password: str = field(default="", repr=False)
    index_dir: str | None = None  # None: the Settings' own (RAG_INDEX_DIR or ./.rag)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> ServeSettings:
        """RAG_HOST, RAG_PORT, RAG_USERNAME, RAG_PASSWORD; `given` (the command line) wins where not None."""
        env = os.environ if environ is None else environ
        try:
            port = int(env.get("RAG_PORT") or cls.port)
        except ValueError as exc:
            raise ConfigError(f"RAG_PORT={env.get('RAG_PORT')!r} is not a port number") from exc
        values: dict[str, Any] = {"host": env.get("RAG_HOST") or cls.host, "port": port,
                                  "username": env.get("RAG_USERNAME", ""), "password": env.get("RAG_PASSWORD", "")}
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)

    @property
    def login(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    @property
    def exposed(self) -> bool:
        """Reachable from other machines: a share link, or an address other than loopback."""
        return self.share or self.host not in LOOPBACK_HOSTS

    def login_problem(self) -> str:
        """Why the page may not be served this way ("" if it may): an exposed page needs a login unless
        `no_auth` says otherwise."""
        if self.exposed and self.login is None and not self.no_auth:
            return (f"serving on {'a share link' if self.share else self.host} needs a login: set RAG_USERNAME and "
                    "RAG_PASSWORD (or pass --no-auth to serve without one)")
        return ""
