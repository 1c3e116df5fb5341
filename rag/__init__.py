"""Grounded, cited question answering over a corpus of news articles."""

from typing import TYPE_CHECKING, Any

__all__ = ["Answer", "Assistant", "Citation", "Filters", "IngestReport", "Passage", "Settings", "SourceRef"]

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.types import Answer, Citation, Filters, IngestReport, Passage, SourceRef


def __getattr__(name: str) -> Any:
    # Lazy, so `rag --help` and `import rag.types` do not pay for llama-index and torch.
    if name == "Assistant":
        from rag.assistant import Assistant

        return Assistant
    if name == "Settings":
        from rag.config import Settings

        return Settings
    if name in ("Answer", "Citation", "Filters", "IngestReport", "Passage", "SourceRef"):
        from rag import types

        return getattr(types, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
