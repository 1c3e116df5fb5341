"""LLM backends through LlamaIndex's integrations, built from Settings; failures become BackendError."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import BackendError, ConfigError

OPENAI_API = "https://api.openai.com/v1"
OLLAMA_URL = "http://127.0.0.1:11434"


def describe(settings: Settings) -> str:
    """Where the configured backend is, for messages (never the API key)."""
    s = settings
    if s.answer_backend == "openai":
        return f"the OpenAI-compatible server at {s.llm_base_url or OPENAI_API} (model {s.llm_model or 'default'!r})"
    if s.answer_backend == "ollama":
        return f"the Ollama server at {s.llm_base_url or OLLAMA_URL} (model {s.llm_model!r})"
    if s.answer_backend == "llama-cpp":
        return f"the in-process llama.cpp model {s.llm_model!r}"
    return "the extractive answerer"


def make_llm(settings: Settings) -> Any:
    """The LlamaIndex LLM for settings.answer_backend; ConfigError when it cannot be set up as configured."""
    s = settings
    if s.answer_backend == "openai":
        from llama_index.llms.openai_like import OpenAILike

        base = s.llm_base_url or OPENAI_API
        if base == OPENAI_API and not s.llm_api_key:
            raise ConfigError("the openai backend on OpenAI's API needs RAG_LLM_API_KEY (or OPENAI_API_KEY); for a "
                              "local server set RAG_LLM_BASE_URL, e.g. http://127.0.0.1:8080/v1")
        return OpenAILike(model=s.llm_model or "local-model", api_base=base, api_key=s.llm_api_key or "no-key",
                          is_chat_model=True, context_window=s.llm_context_window, max_tokens=s.llm_max_tokens,
                          temperature=s.llm_temperature, timeout=s.llm_timeout_s, max_retries=0)
    if s.answer_backend == "ollama":
        from llama_index.llms.ollama import Ollama

        if not s.llm_model:
            raise ConfigError("the ollama backend needs RAG_LLM_MODEL, e.g. llama3.1:8b (as `ollama list` shows it)")
        return Ollama(model=s.llm_model, base_url=s.llm_base_url or OLLAMA_URL, request_timeout=s.llm_timeout_s,
                      temperature=s.llm_temperature, context_window=s.llm_context_window)
    if s.answer_backend == "llama-cpp":
        # The model file first: a wrong path is said whether or not the extra is installed yet.
        if not s.llm_model or not Path(s.llm_model).is_file():
            raise ConfigError(f"the llama-cpp backend needs RAG_LLM_MODEL set to a GGUF file, got {s.llm_model!r}")
        try:
            from llama_index.llms.llama_cpp import LlamaCPP
        except ImportError as exc:
            raise ConfigError("the llama-cpp backend needs the local-llm extra: pip install -e '.[local-llm]'") from exc
        try:
            return LlamaCPP(model_path=s.llm_model, temperature=max(s.llm_temperature, 0.01),
                            max_new_tokens=s.llm_max_tokens, context_window=s.llm_context_window, verbose=False)
        except Exception as exc:
            raise BackendError(f"{describe(s)} could not be loaded: {exc}") from exc
    raise ConfigError(f"answer_backend {s.answer_backend!r} is not an LLM backend")


def chat_messages(system: str, user: str) -> list[Any]:
    from llama_index.core.llms import ChatMessage, MessageRole

    return [ChatMessage(role=MessageRole.SYSTEM, content=system), ChatMessage(role=MessageRole.USER, content=user)]


def stream_chat(llm: Any, messages: Sequence[Any], where: str) -> Iterator[str]:
    """The reply's text pieces as they arrive; any failure (refused connection, timeout, bad reply) is a
    BackendError naming `where`."""
    try:
        for chunk in llm.stream_chat(list(messages)):
            delta = chunk.delta or ""
            if delta:
                yield delta
    except Exception as exc:
        raise BackendError(f"{where} failed: {_reason(exc)}") from exc


def complete_chat(llm: Any, messages: Sequence[Any], where: str) -> str:
    try:
        return str(llm.chat(list(messages)).message.content or "")
    except Exception as exc:
        raise BackendError(f"{where} failed: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost useful message of a client error (openai/httpx wrap the connection error)."""
    name = exc.__class__.__name__
    text = str(exc).strip() or name
    cause = exc.__cause__ or exc.__context__
    if cause is not None and ("Connection" in name or "Timeout" in name):
        return f"{text} ({cause.__class__.__name__}: {str(cause).strip()[:200]})"
    return f"{text[:300]}" if name in text else f"{name}: {text[:300]}"
