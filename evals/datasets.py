"""Adapters: external QA sets in ../shared/data -> (a corpus written as JSONL, gold cases), at run time only.

Their licences forbid copying them into the repo, so nothing here is ever written inside it."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from evals.gold import Evidence, GoldCase, GoldError
from evals.metrics import contains

DATASETS = ("squad2", "squad2-unseen", "realtimeqa", "realtimeqa-2023", "realtimeqa-2024", "multihop")
# The weeks of past/<year>: 2023 tunes (read its misses, fit, choose), 2024 is held out (aggregates only).
NEWS_WEEKS = {"realtimeqa-2023": "2023", "realtimeqa-2024": "2024"}
# Cases reported apart from the headline figures: questions whose gold choice is in none of their own pages.
ASIDE_TAG = "answer-not-in-pages"
RECORDS_PER_FILE = 1000  # each corpus file well under the 50 MB file limit


def default_data_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if not path.exists():
        raise GoldError(f"{path} is missing: the shared data folder must sit beside the repo (../shared/data)")
    return path


def _write_jsonl(records: list[dict[str, object]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return out


def squad2(data_dir: Path, work: Path, answerable: int = 1000, unanswerable: int = 300, seed: int = 0,
           exclude: frozenset[str] = frozenset()) -> tuple[list[Path], list[GoldCase]]:
    """SQuAD 2.0 dev: the 35 articles as documents; a fixed random sample of questions (ids in `exclude` left out)."""
    data = json.loads(_require(data_dir / "squad2-dev" / "dev-v2.0.derived-from-explorer.json").read_text())["data"]
    records, pos, neg = [], [], []
    for doc in data:
        title = doc["title"].replace("_", " ")
        records.append({"id": f"squad2/{doc['title']}", "title": title,
                        "text": "\n\n".join(p["context"] for p in doc["paragraphs"]), "source": "Wikipedia"})
        for p in doc["paragraphs"]:
            for qa in p["qas"]:
                if qa["is_impossible"]:
                    neg.append(GoldCase(qa["id"], qa["question"], False, evidence=(), tags=("unanswerable",)))
                else:
                    quote = max(qa["answers"], key=len)
                    sentence = next((s for s in re.split(r"(?<=[.!?])\s+", p["context"]) if quote in s), quote)
                    pos.append(GoldCase(qa["id"], qa["question"], True, answers=tuple(dict.fromkeys(qa["answers"])),
                                        evidence=(Evidence(doc_id=f"squad2/{doc['title']}", quote=sentence),),
                                        tags=("answerable",)))
    pos = [c for c in pos if c.id not in exclude]
    neg = [c for c in neg if c.id not in exclude]
    rng = random.Random(seed)
    cases = rng.sample(pos, min(answerable, len(pos))) + rng.sample(neg, min(unanswerable, len(neg)))
    return [_write_jsonl(records, work / "squad2.jsonl")], cases


def squad2_tuning(data_dir: Path, work: Path, answerable: int = 600, unanswerable: int = 300) -> tuple[list[Path], list[GoldCase]]:
    """A SQuAD 2.0 sample disjoint from the evaluation sample (the full seed-0 sample), to fit weights on."""
    _, held_out = squad2(data_dir, work, seed=0)
    return squad2(data_dir, work, answerable, unanswerable, seed=1, exclude=frozenset(c.id for c in held_out))


def squad2_unseen(data_dir: Path, work: Path, answerable: int = 1000, unanswerable: int = 300
                  ) -> tuple[list[Path], list[GoldCase]]:
    """A third SQuAD 2.0 sample, disjoint from the evaluation and the tuning samples: questions no rule, weight
    or fixture was written against (for measuring what a hand-written rule is worth; read its scores, never its
    misses, or it stops being unseen)."""
    _, held_out = squad2(data_dir, work, seed=0)
    _, tuning = squad2_tuning(data_dir, work)
    seen = frozenset(c.id for c in held_out + tuning)
    return squad2(data_dir, work, answerable, unanswerable, seed=2, exclude=seen)


def _realtimeqa_pages(folder: Path) -> tuple[dict[str, dict[str, object]], dict[str, list[str]]]:
    """Every non-empty page (gold articles first, then search results) by URL; each question's gold URLs."""
    docs: dict[str, dict[str, object]] = {}
    gold_urls: dict[str, list[str]] = {}

    def add(r: dict[str, str]) -> bool:
        if not (r.get("text") or "").strip() or not r.get("url"):
            return False
        docs.setdefault(r["url"], {"id": r["url"], "url": r["url"], "text": r["text"],
                                   "published": r.get("publish_date") or "", "title": r.get("title") or ""})
        return True

    for path in sorted(folder.glob("*_gold.jsonl")):
        for line in path.read_text().splitlines():
            obj = json.loads(line)
            gold_urls[obj["question_id"]] = [r["url"] for r in obj.get("search_result") or [] if add(r)]
    for path in sorted(folder.glob("*_gcs.jsonl")):
        for line in path.read_text().splitlines():
            for r in json.loads(line).get("search_result") or []:
                add(r)
    return docs, gold_urls


def realtimeqa(data_dir: Path, work: Path) -> tuple[list[Path], list[GoldCase]]:
    """RealTime QA: gold articles plus search-result pages as distractors; the right choice is the answer."""
    docs, gold_urls = _realtimeqa_pages(_require(data_dir / "realtimeqa" / "past" / "2022"))
    cases = []
    for path in sorted((data_dir / "realtimeqa" / "past" / "2022").glob("*_qa.jsonl")):
        for line in path.read_text().splitlines():
            q = json.loads(line)
            urls = gold_urls.get(q["question_id"]) or []
            if not urls:
                continue
            gold = q["choices"][int(q["answer"][0])].strip("“”\"")
            in_gold = any(contains(str(docs[u]["text"]), gold) for u in urls)
            # June's weeks tune the ranker and abstention (evals/tune.py); July and August are held out.
            held = "tuning" if q["question_id"].startswith("202206") else "held-out"
            # Asked on the quiz's date: pages published later are not seen.
            cases.append(GoldCase(q["question_id"], q["question_sentence"], True, answers=(gold,),
                                  evidence=tuple(Evidence(url=u) for u in urls),
                                  tags=("answer-in-gold" if in_gold else "answer-not-in-gold", held),
                                  as_of=q["question_date"].replace("/", "-")))
    return [_write_jsonl(list(docs.values()), work / "realtimeqa.jsonl")], cases


# The kind of answer a question asks for, by its wh-phrase (more specific phrases first: at the same position,
# the first listed wins).
_PLACES = r"(?:country|countries|state|states|city|cities|county|region|province|island|nation|continent)"
_TIMES = r"(?:year|month|day|date|decade|century)"
_KINDS = tuple((name, re.compile(pattern, re.I)) for name, pattern in (
    ("how-many", r"\bhow (?:many|much)\b"),
    ("when", rf"\bwhen\b|\b(?:what|which) {_TIMES}\b|\bin (?:what|which) {_TIMES}\b"),
    ("where", rf"\bwhere\b|\b(?:what|which) {_PLACES}\b|\bin (?:what|which) {_PLACES}\b"),
    ("who", r"\bwho(?:m|se)?\b"),
    ("which", r"\bwhich\b"),
    ("what", r"\bwhat\b"),
))


def question_kinds(question: str, as_of: str) -> tuple[str, str]:
    """(the kind of answer asked for: how-many / when / where / who / which / what / other, "time-word" or
    "no-time-word"), for the breakdowns of a report: the question's first wh-phrase, wherever it is.

    >>> question_kinds("The U.S. embassy in which country was evacuated this week?", "2023-04-28")
    ('where', 'time-word')
    >>> question_kinds("Infestations of which unwanted pest are causing panic across Paris?", "2023-10-06")
    ('which', 'no-time-word')
    """
    from datetime import date

    from rag.retrieve.timeframe import time_frame

    found = [(m.start(), i, name) for i, (name, pattern) in enumerate(_KINDS) if (m := pattern.search(question))]
    kind = min(found)[2] if found else "other"
    frame = time_frame(question, date.fromisoformat(as_of)) if as_of else None
    return kind, "time-word" if frame is not None and frame.kind else "no-time-word"


def realtimeqa_weeks(data_dir: Path, work: Path, year: str) -> tuple[list[Path], list[GoldCase]]:
    """RealTime QA's weeks of one year: the corpus is the search-result pages of every question; each question
    is asked as of its quiz date, its gold choice the answer. The questions whose gold choice is in one of their
    own pages are the answerable set (tag `answer-in-pages`, its pages the evidence); the rest are tagged
    ASIDE_TAG and reported apart. 2023 is the tuning split, 2024 held out (tags `tuning`, `held-out`)."""
    folder = _require(data_dir / "realtimeqa" / "past" / year)
    docs: dict[str, dict[str, object]] = {}
    pages: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*_gcs.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            urls = []
            for r in obj.get("search_result") or []:
                if not (r.get("text") or "").strip() or not r.get("url"):
                    continue
                docs.setdefault(r["url"], {"id": r["url"], "url": r["url"], "text": r["text"],
                                           "published": r.get("publish_date") or "", "title": r.get("title") or ""})
                urls.append(r["url"])
            pages[obj["question_id"]] = urls
    split = "tuning" if year == "2023" else "held-out"
    cases = []
    for path in sorted(folder.glob("*_qa.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            gold = q["choices"][int(q["answer"][0])].strip("“”\"")
            as_of = q["question_date"].replace("/", "-")
            holding = [u for u in pages.get(q["question_id"], []) if contains(str(docs[u]["text"]), gold)]
            kind, time_word = question_kinds(q["question_sentence"], as_of)
            cases.append(GoldCase(q["question_id"], q["question_sentence"], True, answers=(gold,),
                                  evidence=tuple(Evidence(url=u) for u in holding),
                                  tags=("answer-in-pages" if holding else ASIDE_TAG, split, kind, time_word),
                                  as_of=as_of))
    records = list(docs.values())
    files = [_write_jsonl(records[i:i + RECORDS_PER_FILE], work / f"realtimeqa-{year}" / f"pages-{i:06d}.jsonl")
             for i in range(0, len(records), RECORDS_PER_FILE)]
    return files, cases


def multihop(data_dir: Path, work: Path) -> tuple[list[Path], list[GoldCase]]:
    """MultiHop-RAG queries (news of late 2023) against a 2022 news corpus (RealTime QA's pages): every one
    should be refused."""
    queries = json.loads(_require(data_dir / "multihop-rag-queries-sample" / "queries.json").read_text())["queries"]
    # Even ids tune the abstention (evals/tune.py); odd ids are held out.
    cases = [GoldCase(f"multihop/{q['id']}", q["question"], False,
                      tags=("out-of-corpus", q.get("question_type", ""), "held-out" if int(q["id"]) % 2 else "tuning"))
             for q in queries]
    docs, _ = _realtimeqa_pages(_require(data_dir / "realtimeqa" / "past" / "2022"))
    return [_write_jsonl(list(docs.values()), work / "realtimeqa.jsonl")], cases  # the same file as realtimeqa()


def load_dataset(name: str, data_dir: Path, work: Path, limit: int | None = None) -> tuple[list[Path], list[GoldCase]]:
    if name in ("squad2", "squad2-unseen"):
        files, cases = squad2(data_dir, work) if name == "squad2" else squad2_unseen(data_dir, work)
        if limit:  # a prefix of the full sample, keeping its 77/23 split, so it is disjoint from squad2_tuning too
            pos, neg = [c for c in cases if c.answerable], [c for c in cases if not c.answerable]
            cases = pos[: int(limit * 0.77)] + neg[: limit - int(limit * 0.77)]
        return files, cases
    if name in NEWS_WEEKS:  # --limit: the first questions of the answerable set and of the rest; the corpus whole
        files, cases = realtimeqa_weeks(data_dir, work, NEWS_WEEKS[name])
        if limit:
            scored = [c for c in cases if ASIDE_TAG not in c.tags]
            aside = [c for c in cases if ASIDE_TAG in c.tags]
            cases = scored[:limit] + aside[: limit * len(aside) // max(1, len(scored))]
        return files, cases
    if name in ("realtimeqa", "multihop"):  # --limit: the first questions; the corpus stays whole
        files, cases = realtimeqa(data_dir, work) if name == "realtimeqa" else multihop(data_dir, work)
        return files, cases[:limit] if limit else cases
    raise GoldError(f"unknown dataset {name!r}: give a gold .jsonl file or one of {', '.join(DATASETS)}")
