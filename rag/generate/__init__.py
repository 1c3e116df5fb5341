"""Generation: answers written by an LLM, kept only where verified. The backends (OpenAI-compatible, Ollama,
in-process llama.cpp; `backends.py`) and the grounded generator: its prompt, per-sentence verification against
the cited source, and exact-span citations (`grounded.py`: the `AnswerGenerator` interface and its
`GroundedGenerator`)."""
