"""The README against the code: its configuration table names every setting of `rag/config.py` with its default
and no variable the code does not read; its CLI block names every `rag` command and option (`rag/cli.py`); its
Python API block names real fields and methods; the modules and make targets it gives exist."""

from __future__ import annotations

import argparse
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


def cli_block() -> dict[str, set[str]]:
    """`rag` command -> the options its line in the README's CLI block names."""
    text = README.read_text()
    section = text[text.index("\n## CLI\n"):]
    block = section.split("```")[1]
    commands: dict[str, set[str]] = {}
    current = ""
    for line in block.splitlines():
        code = line.split("#")[0]
        found = re.match(r"\s*rag (\w+)", code)
        if found:
            current = found.group(1)
            commands[current] = set()
        if current:
            commands[current] |= set(re.findall(r"(--[a-z][a-z-]*)", code))
    return commands


def test_the_readme_cli_block_names_every_command_and_option() -> None:
    from rag.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    documented = cli_block()
    assert set(documented) == set(commands)
    everywhere = {"--help", "--chroma-url"}  # "Every command also takes `--chroma-url URL`" below the block
    assert "Every command also takes `--chroma-url URL`" in README.read_text()
    for name, sub in commands.items():
        options = {o for action in sub._actions for o in action.option_strings if o.startswith("--")}
        assert options - everywhere == documented[name], name


def api_block() -> str:
    text = README.read_text()
    section = text[text.index("\n## Python API\n"):]
    return section.split("```python")[1].split("```")[0]


def test_the_readme_api_block_names_real_fields_and_methods() -> None:
    from ingest.pipeline import IngestReport
    from rag import Assistant
    from rag.types import Answer, Citation, Passage

    block = api_block()
    for cls in (Citation, Passage):  # the constructor-like listing names every field
        listing = re.search(rf"{cls.__name__}\(([^)]*)\)", block)
        assert listing is not None, cls.__name__
        named = [w for w in re.split(r"[\s,#]+", listing.group(1)) if w]
        assert sorted(named) == sorted(f.name for f in fields(cls)), cls.__name__
    for owner, prefix in ((Answer, "answer"), (IngestReport, "report")):
        used = set(re.findall(rf"\b{prefix}\.(\w+)", block))
        assert used and used <= {f.name for f in fields(owner)}, (prefix, used - {f.name for f in fields(owner)})
    methods = set(re.findall(r"\bassistant\.(\w+)\(", block))
    assert methods and all(callable(getattr(Assistant, m, None)) for m in methods), methods


def test_the_commands_the_readme_gives_exist() -> None:
    """Every `python -m` module of ours and every `make` target the README names (its figures' commands among
    them) is in the repo."""
    text = README.read_text()
    root = README.parent
    ours = ("bench.", "evals.", "rag.", "ingest.")
    modules = {m for m in re.findall(r"python -m ([\w.]+\w)", text) if m.startswith(ours)}
    assert modules
    missing = [m for m in modules if not (root / f"{m.replace('.', '/')}.py").is_file()
               and not (root / m.replace(".", "/") / "__main__.py").is_file()]
    assert not missing, missing
    targets = set(re.findall(r"^([\w-]+):", (root / "Makefile").read_text(), flags=re.MULTILINE))
    assert set(re.findall(r"`make ([\w-]+)", text)) - targets == set()
