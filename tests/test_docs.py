"""The README's configuration table against `rag/config.py`: every setting is documented, with its default, and
the table documents no variable the code does not read."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path

from rag.config import ServeSettings, Settings

README = Path(__file__).resolve().parent.parent / "README.md"
# Read by ServeSettings.from_env (app.py), not fields of Settings.
SERVE_VARIABLES = {"RAG_HOST", "RAG_PORT", "RAG_USERNAME", "RAG_PASSWORD"}


def configuration_rows() -> dict[str, str]:
    """`RAG_*` variable -> the default cell of its row in the README's "Configuration" table."""
    text = README.read_text()
    section = text[text.index("\n## Configuration\n"):]
    section = section[: section.index("\n## ", 1)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `RAG_"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for variable in re.findall(r"`(RAG_[A-Z0-9_]+)`", cells[0]):
            rows[variable] = cells[1]
    return rows


def documented(value: object) -> str | None:
    """How the table writes a default; None where it describes one in words (an empty string or None)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    rows = configuration_rows()
    missing = [f"RAG_{f.name.upper()}" for f in fields(Settings) if f"RAG_{f.name.upper()}" not in rows]
    assert not missing, f"README's Configuration table lacks {missing}"
    wrong = []
    for f in fields(Settings):
        default = f.default if f.default is not MISSING else None
        written = documented(default)
        cell = rows[f"RAG_{f.name.upper()}"]
        if written is None or (written == "0" and "(" in cell):  # described in words ("(calibrated)", "(none)")
            continue
        if written not in re.split(r"[\s,/`]+", cell):
            wrong.append((f.name, written, cell))
    assert not wrong, f"defaults in README's Configuration table differ from rag/config.py: {wrong}"


def test_the_readme_table_names_only_variables_the_code_reads() -> None:
    read = {f"RAG_{f.name.upper()}" for f in fields(Settings)} | SERVE_VARIABLES
    assert set(configuration_rows()) - read == set()
    assert {"host", "port", "username", "password"} <= {f.name for f in fields(ServeSettings)}
