"""The project's error hierarchy; user-facing messages are made from these at the edges only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class RagError(Exception):
    """Base of every error this project raises on purpose."""


class IngestError(RagError):
    """One input file (or record) could not be turned into an article; the batch goes on."""


class IndexMismatchError(RagError):
    """The index on disk was built with other settings (embedding model, format version)."""


class IndexStorageError(RagError):
    """The index directory could not be read or written: read-only, disk full, damaged files."""


def storage_error(what: str, directory: object, exc: BaseException) -> IndexStorageError:
    """An IndexStorageError for `exc`, saying the likely cause when the directory tells it."""
    import errno
    import os
    import shutil

    text = str(exc)
    code = getattr(exc, "errno", None) or getattr(exc, "sqlite_errorcode", None)
    try:  # Chroma's own errors on a full disk name only their symptom ("Failed to apply logs")
        nearly_full = shutil.disk_usage(str(directory)).free < 16 * 2**20
    except OSError:
        nearly_full = False
    if code == errno.ENOSPC or "disk is full" in text or "No space left" in text or nearly_full:
        cause = "the disk is full: free some space, then run the same command again"
    elif code == errno.EROFS or (os.path.isdir(str(directory)) and not os.access(str(directory), os.W_OK)):
        cause = (f"{directory} is read-only: make it writable, or copy the index to a writable folder and point "
                 "--index or RAG_INDEX_DIR there (the vector store writes even to answer)")
    elif "not a database" in text or "malformed" in text:
        cause = "its files are damaged: re-ingest into a new index directory"
    else:
        cause = "check that the directory exists and is readable and writable"
    return IndexStorageError(f"{what} failed ({exc.__class__.__name__}: {text}); {cause}")


def open_retrying_locks(open_once: Callable[[], T], what: str, directory: object,
                        errors: tuple[type[BaseException], ...] = (Exception,),
                        reset: Callable[[], None] = lambda: None, timeout_s: float = 30.0) -> T:
    """`open_once()`, retried while SQLite says "database is locked" (or that a table it was creating "already
    exists"), else its error as an IndexStorageError.

    Two processes opening a new index at once race through its set-up (switching to WAL, Chroma's schema), and
    SQLite answers the loser at once, without waiting on its busy timeout; or the loser's schema migration finds
    the winner's tables. `reset()` runs after each failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return open_once()
        except errors as exc:
            reset()
            if ("locked" in str(exc) or "already exists" in str(exc)) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise storage_error(what, directory, exc) from exc


class IndexLockedError(RagError):
    """Another process is writing to the same index."""


class BackendError(RagError):
    """A service the assistant depends on (Chroma server, LLM) failed or is unreachable."""


class ConfigError(RagError):
    """A setting has a value that cannot work."""
