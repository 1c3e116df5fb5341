"""Gold Q&A cases: the JSONL format (see evals/README.md), loaded and checked line by line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.types import Filters


class GoldError(RagError):
    """A gold file or line is malformed."""


@dataclass(frozen=True)
class Evidence:
    doc_id: str = ""
    url: str = ""
    quote: str = ""


@dataclass(frozen=True)
class GoldCase:
    id: str
    question: str
    answerable: bool
    answers: tuple[str, ...] = ()  # any one alias is right
    answers_all: tuple[str, ...] = ()  # every item is required
    evidence: tuple[Evidence, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)
    as_of: str = ""  # the date the question was asked (YYYY-MM-DD): later articles are not seen


def parse_case(obj: object, where: str) -> GoldCase:
    if not isinstance(obj, dict):
        raise GoldError(f"{where}: a gold case must be a JSON object")
    for key in ("id", "question", "answerable"):
        if key not in obj:
            raise GoldError(f"{where}: missing {key!r}")
    if not isinstance(obj["answerable"], bool):
        raise GoldError(f"{where}: 'answerable' must be true or false")
    answers = tuple(str(a) for a in obj.get("answers") or ())
    answers_all = tuple(str(a) for a in obj.get("answers_all") or ())
    if obj["answerable"] and not (answers or answers_all):
        raise GoldError(f"{where}: an answerable case needs 'answers' or 'answers_all'")
    evidence = []
    for item in obj.get("evidence") or ():
        if not isinstance(item, dict) or not (item.get("doc_id") or item.get("url")):
            raise GoldError(f"{where}: each evidence item needs 'doc_id' or 'url'")
        evidence.append(Evidence(str(item.get("doc_id", "")), str(item.get("url", "")), str(item.get("quote", ""))))
    history = []
    for turn in obj.get("history") or ():
        if not (isinstance(turn, list) and len(turn) == 2):
            raise GoldError(f"{where}: 'history' must be a list of [question, answer] pairs")
        history.append((str(turn[0]), str(turn[1])))
    as_of = str(obj.get("as_of") or "")
    try:
        Filters(as_of=as_of)  # the one check of a date bound
    except ValueError as exc:
        raise GoldError(f"{where}: 'as_of' must be YYYY, YYYY-MM or YYYY-MM-DD") from exc
    return GoldCase(id=str(obj["id"]), question=str(obj["question"]), answerable=obj["answerable"], answers=answers,
                    answers_all=answers_all, evidence=tuple(evidence), history=tuple(history),
                    tags=tuple(str(t) for t in obj.get("tags") or ()), as_of=as_of)


def load_gold(path: Path) -> list[GoldCase]:
    if not path.exists():
        raise GoldError(f"gold file {path} does not exist")
    cases: list[GoldCase] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{where}: malformed JSON: {exc.msg}") from exc
        case = parse_case(obj, where)
        if case.id in seen:
            raise GoldError(f"{where}: duplicate id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise GoldError(f"gold file {path} has no cases")
    return cases
