"""The project's error hierarchy; user-facing messages are made from these at the edges only."""


class RagError(Exception):
    """Base of every error this project raises on purpose."""


class IngestError(RagError):
    """One input file (or record) could not be turned into an article; the batch goes on."""


class IndexMismatchError(RagError):
    """The index on disk was built with other settings (embedding model, format version)."""


class IndexLockedError(RagError):
    """Another process is writing to the same index."""


class BackendError(RagError):
    """A service the assistant depends on (Chroma server, LLM) failed or is unreachable."""


class ConfigError(RagError):
    """A setting has a value that cannot work."""
