"""The evaluation harness: gold format errors, metrics on known answers, dataset adapters on the real shared
data, and `rag eval` end to end (seed gold + LlamaIndex baseline, reports, chart, gate)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evals.datasets import (
    ASIDE_TAG,
    load_dataset,
    multihop,
    realtimeqa,
    realtimeqa_weeks,
    squad2,
    squad2_tuning,
    squad2_unseen,
)
from evals.gold import Evidence, GoldCase, GoldError, load_gold
from evals.metrics import aggregate, answer_curve, contains, score_case, token_f1
from rag.types import Answer, Article, Citation, Passage
from tests.conftest import REPO, SHARED_DATA

needs_shared = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the repo")


def _rag(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


# -- the gold format ----------------------------------------------------------------------------------------
def test_seed_gold_set_meets_the_issue_brief() -> None:
    cases = load_gold(REPO / "evals" / "gold" / "seed.jsonl")
    assert len(cases) >= 40
    assert sum(not c.answerable for c in cases) >= 10
    assert sum(bool(c.history) for c in cases) >= 2
    assert all(c.evidence for c in cases if c.answerable)


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"id": "a", "question": "q?"}', "missing 'answerable'"),
    ('{"id": "a", "question": "q?", "answerable": "yes"}', "must be true or false"),
    ('{"id": "a", "question": "q?", "answerable": true}', "needs 'answers'"),
    ('{"id": "a", "question": "q?", "answerable": true, "answers": ["x"], "evidence": [{"quote": "x"}]}',
     "needs 'doc_id' or 'url'"),
    ('{"id": "a", "question": "q?", "answerable": false, "history": [["only one"]]}', "[question, answer] pairs"),
    ('{"id": "a", "question": "q?", "answerable": false, "as_of": "last week"}', "'as_of' must be"),
])
def test_malformed_gold_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "ok", "question": "q?", "answerable": false}\n\n' + line + "\n")
    with pytest.raises(GoldError) as err:
        load_gold(gold)
    assert f"{gold}:3" in str(err.value) and message in str(err.value)


def test_duplicate_ids_and_empty_files_are_refused(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "a", "question": "q?", "answerable": false}\n' * 2)
    with pytest.raises(GoldError, match=r"gold.jsonl:2: duplicate id 'a'"):
        load_gold(gold)
    gold.write_text("\n")
    with pytest.raises(GoldError, match="has no cases"):
        load_gold(gold)


# -- metrics --------------------------------------------------------------------------------------------------
TEXT = "Tokayev asked the CSTO for help. Russia sent paratroopers on January 6."
ARTICLE = Article(id="news/a.txt", text=TEXT, title="A")


def _citation(n: int, start: int, end: int, text: str = TEXT) -> Citation:
    return Citation(id=n, doc_id="news/a.txt", quote=text[start:end], start_char=start, end_char=end, title="A")


def _passage(start: int, end: int, doc_id: str = "news/a.txt") -> Passage:
    return Passage(doc_id=doc_id, chunk_id=f"{doc_id}:{start}", text=TEXT[start:end], start_char=start,
                   end_char=end, score=0.5)


CASE = GoldCase("c1", "Who asked the CSTO for help?", True, answers=("Tokayev", "Kassym-Jomart Tokayev"),
                evidence=(Evidence(doc_id="a.txt", quote="Tokayev asked the CSTO for help."),))


def test_a_right_cited_answer_scores_on_every_axis() -> None:
    answer = Answer(question=CASE.question, text="Tokayev asked the CSTO for help [1].", abstained=False,
                    citations=(_citation(1, 0, 32),), short_answer="Tokayev", timings_ms={"total": 12.0})
    ranked = [_passage(33, len(TEXT), "news/b.txt"), _passage(0, 32)]
    r = score_case(CASE, answer, ranked, {"news/a.txt": ARTICLE}, [1, 3])
    assert r["correct"] and r["cited_support"] and r["spans_exact"] == 1
    assert r["short_em"] == 1.0 and r["short_f1"] == 1.0
    # The gold document matches by path suffix; it is second, so hit@1 misses and MRR is 1/2.
    assert (r["doc_rank"], r["hit@1"], r["hit@3"], r["answer_in_top@1"], r["answer_in_top@3"]) == (2, False, True, False, True)
    assert r["recall@1"] == 0.0 and r["recall@3"] == 1.0
    assert aggregate([r], [1, 3])["mrr"] == 0.5
    # The report keeps the answer in the shape `rag ask --json` and `/answer` give (rag.serialize), passages aside.
    assert r["response"]["schema"] == 1 and r["response"]["answer"] == answer.text and "passages" not in r["response"]
    assert r["response"]["citations"][0]["quote"] == "Tokayev asked the CSTO for help."


def test_a_collapsed_copy_of_the_gold_article_counts_as_a_hit() -> None:
    from dataclasses import replace

    from evals.metrics import score_retrieval
    from rag.types import SourceRef

    copy = replace(_passage(0, 32, "news/copy.txt"), duplicates=(SourceRef(doc_id="news/a.txt"),))
    assert score_retrieval(CASE, [copy], [1])["hit@1"] is True
    assert score_retrieval(CASE, [_passage(0, 32, "news/copy.txt")], [1])["hit@1"] is False


def test_wrong_citations_and_tampered_spans_are_counted() -> None:
    # Cites the Russia sentence (no gold answer, no overlap with the evidence) and a quote whose offsets lie.
    lying = Citation(id=2, doc_id="news/a.txt", quote="Tokayev asked", start_char=40, end_char=53, title="A")
    answer = Answer(question=CASE.question, text="Russia sent paratroopers [1]. Tokayev asked [2].", abstained=False,
                    citations=(_citation(1, 33, len(TEXT)), lying))
    r = score_case(CASE, answer, [], {"news/a.txt": ARTICLE}, [1])
    assert r["correct"] and r["citations"] == 2 and r["spans_exact"] == 1
    assert r["citations_supporting"] == 1  # the lying quote does contain "Tokayev"
    agg = aggregate([r], [1])
    assert agg["span_exact"] == 0.5 and agg["citation_precision"] == 0.5


def test_abstention_metrics() -> None:
    refuse = GoldCase("r1", "What did the comment form ask for?", False)
    abstain = Answer(question="q", text="The articles in the corpus don't say.", abstained=True)
    wrong = Answer(question="q", text="Paris [1].", abstained=False, citations=(_citation(1, 0, 7),))
    results = [score_case(refuse, abstain, [], {}, [1]), score_case(refuse, wrong, [], {}, [1]),
               score_case(CASE, abstain, [], {}, [1])]
    agg = aggregate(results, [1])
    assert agg["refusal_recall"] == 0.5 and agg["refusal_precision"] == 0.5 and agg["over_refusal"] == 1.0
    assert agg["answer_accuracy"] == 0.0


def test_squad_normalisation() -> None:
    assert contains("It was the 6th of January.", "6th of january")
    assert not contains("Tokayevich", "Tokayev")
    assert token_f1("President Tokayev", "Tokayev") == pytest.approx(2 / 3)


# -- adapters on the real shared data ---------------------------------------------------------------------------
@needs_shared
def test_squad2_adapter_fixed_sample(tmp_path: Path) -> None:
    files, cases = squad2(SHARED_DATA, tmp_path, answerable=30, unanswerable=10)
    again = squad2(SHARED_DATA, tmp_path / "again", answerable=30, unanswerable=10)[1]
    assert [c.id for c in cases] == [c.id for c in again]  # fixed seed: the same sample every run
    docs = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(docs) == 35
    assert sum(c.answerable for c in cases) == 30 and sum(not c.answerable for c in cases) == 10
    texts = {d["id"]: d["text"] for d in docs}
    for c in cases:
        if c.answerable:
            assert any(a in texts[c.evidence[0].doc_id] for a in c.answers)
    assert not any(f.is_relative_to(REPO) for f in files)  # never copied into the repo


@needs_shared
def test_squad2_samples_are_disjoint(tmp_path: Path) -> None:
    """Evaluation, tuning and the unseen sample never share a question."""
    evaluation = {c.id for c in squad2(SHARED_DATA, tmp_path)[1]}
    tuning = {c.id for c in squad2_tuning(SHARED_DATA, tmp_path)[1]}
    unseen = squad2_unseen(SHARED_DATA, tmp_path)[1]
    assert len(evaluation) == 1300 and len(tuning) == 900 and len(unseen) == 1300
    assert sum(c.answerable for c in unseen) == 1000
    assert not evaluation & tuning and not {c.id for c in unseen} & (evaluation | tuning)
    assert [c.id for c in load_dataset("squad2-unseen", SHARED_DATA, tmp_path, limit=100)[1]] == \
        [c.id for c in unseen if c.answerable][:77] + [c.id for c in unseen if not c.answerable][:23]


@needs_shared
def test_realtimeqa_adapter_tags_questions_whose_answer_no_gold_article_holds(tmp_path: Path) -> None:
    files, cases = realtimeqa(SHARED_DATA, tmp_path)
    docs = {json.loads(line)["url"] for line in files[0].read_text().splitlines()}
    assert len(cases) >= 80 and len(docs) > 300  # gold articles plus search-result distractors
    tags = {t for c in cases for t in c.tags}
    assert tags == {"answer-in-gold", "answer-not-in-gold", "tuning", "held-out"}
    assert all(c.answerable and c.answers and all(e.url in docs for e in c.evidence) for c in cases)


@needs_shared
@pytest.mark.parametrize(("year", "split"), [("2023", "tuning"), ("2024", "held-out")])
def test_news_weeks_adapter_scores_the_questions_their_pages_answer(tmp_path: Path, year: str, split: str) -> None:
    """realtimeqa-2023 / -2024: every week's search-result pages are the corpus, in files under the 50 MB limit;
    each question asked as of its quiz date (ISO); the answerable set is the questions whose gold choice is in one
    of their own pages (those pages its evidence), the rest tagged apart; each tagged with its kind."""
    files, cases = realtimeqa_weeks(SHARED_DATA, tmp_path, year)
    assert len(files) > 1 and all(f.stat().st_size < 50 * 2**20 for f in files)
    urls = {json.loads(line)["url"] for f in files for line in f.read_text().splitlines()}
    scored = [c for c in cases if ASIDE_TAG not in c.tags]
    assert len(cases) > 1000 and 400 < len(scored) < len(cases) and len(urls) > 6000
    assert all(split in c.tags and re.fullmatch(r"\d{4}-\d{2}-\d{2}", c.as_of) for c in cases)
    assert all(c.evidence and all(e.url in urls for e in c.evidence) for c in scored)
    assert all(not c.evidence for c in cases if ASIDE_TAG in c.tags)
    kinds = {t for c in cases for t in c.tags} - {split, ASIDE_TAG, "answer-in-pages"}
    assert kinds <= {"how-many", "when", "where", "who", "which", "what", "other", "time-word", "no-time-word"}
    assert [c.id for c in load_dataset(f"realtimeqa-{year}", SHARED_DATA, tmp_path, limit=20)[1]
            if ASIDE_TAG not in c.tags] == [c.id for c in scored][:20]


def test_wrong_answers_and_the_answer_curve_are_over_the_answerable_questions() -> None:
    """An answered wrong answer counts against wrong_answers, a refusal against over_refusal; the curve refuses
    every answer below each threshold, and its three shares add up to 1."""
    base = {"tags": [], "citations": 0, "spans_exact": 0, "latency_ms": 1.0, "cited_support": False}
    results = [{**base, "answerable": True, "abstained": False, "correct": True, "support": 0.9},
               {**base, "answerable": True, "abstained": False, "correct": False, "support": 0.4},
               {**base, "answerable": True, "abstained": True, "correct": False, "support": 0.1},
               {**base, "answerable": False, "abstained": True, "support": 0.1}]
    agg = aggregate(results, [1])
    assert (agg["answer_accuracy"], agg["wrong_answers"], agg["over_refusal"]) == (0.3333, 0.3333, 0.3333)
    curve = {c["threshold"]: c for c in answer_curve(results, [0.0, 0.5, 0.95])}
    assert (curve[0.0]["right"], curve[0.0]["wrong"], curve[0.0]["refused"]) == (0.3333, 0.3333, 0.3333)
    assert (curve[0.5]["right"], curve[0.5]["wrong"], curve[0.5]["refused"]) == (0.3333, 0.0, 0.6667)
    assert curve[0.95]["refused"] == 1.0


def test_diagnose_refuses_a_held_out_split(tmp_path: Path) -> None:
    from evals.diagnose import main as diagnose

    assert diagnose(["realtimeqa-2024", "--index", str(tmp_path)]) == 2


@needs_shared
def test_multihop_are_should_refuse_cases(tmp_path: Path) -> None:
    files, cases = multihop(SHARED_DATA, tmp_path)
    assert len(files) == 1 and files[0].stat().st_size > 1_000_000  # the 2022 news pages of RealTime QA
    assert cases and not any(c.answerable for c in cases)


def test_missing_data_folder_and_unknown_dataset_are_clear(tmp_path: Path) -> None:
    with pytest.raises(GoldError, match="shared data folder"):
        load_dataset("squad2", tmp_path / "nowhere", tmp_path)
    with pytest.raises(GoldError, match="unknown dataset 'trivia'"):
        load_dataset("trivia", tmp_path, tmp_path)


# -- `rag eval` end to end ------------------------------------------------------------------------------------------
def test_rag_eval_with_baseline_writes_reports_and_gates(tmp_path: Path, corpus_dir: Path) -> None:
    gold = REPO / "evals" / "gold" / "seed.jsonl"
    out = tmp_path / "report"
    run = _rag("eval", str(gold), "--corpus", str(corpus_dir), "--index", str(tmp_path / "idx"), "--baseline",
               "--report", str(out), "--fail-under", "answer_accuracy=0.5", "span_exact=1.0")
    assert run.returncode == 0, run.stderr
    assert "rag vs LlamaIndex default pipeline" in run.stdout and "gate passed" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["cases"] == 44 and len(report["results"]) == 44 and len(report["commit"].split("-")[0]) == 40
    base = report["baseline"]["aggregate"]
    assert base["ingest_chunks"] >= 1 and base["hit@1"] is not None and "answer_accuracy" not in base
    assert report["aggregate"]["span_exact"] == 1.0
    for chart in ("retrieval.png", "abstention.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert chart in (out / "report.md").read_text()
    curve = report["abstention_curve"]
    assert curve[0]["over_refusal"] <= curve[-1]["over_refusal"] and curve[-1]["refusal_recall"] == 1.0

    # An unreachable bar fails with exit 3 and says which metric.
    gate = _rag("eval", str(gold), "--index", str(tmp_path / "idx"), "--fail-under", "answer_accuracy=1.01")
    assert gate.returncode == 3 and "FAILED gate: answer_accuracy=" in gate.stderr


def test_rag_eval_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "gold.jsonl"
    bad.write_text('{"id": "a", "question": "q?", "answerable": false}\n{oops\n')
    run = _rag("eval", str(bad), "--index", str(tmp_path / "idx"))
    assert run.returncode == 1 and f"{bad}:2: malformed JSON" in run.stderr and "Traceback" not in run.stderr
    run = _rag("eval", "trivia", "--index", str(tmp_path / "idx"))
    assert run.returncode == 1 and "neither a gold .jsonl file nor a dataset" in run.stderr
    run = _rag("eval", "squad2", "--data", str(tmp_path / "nowhere"), "--index", str(tmp_path / "idx"))
    assert run.returncode == 1 and "shared data folder" in run.stderr
    run = _rag("eval", str(REPO / "evals" / "gold" / "seed.jsonl"), "--baseline", "--index", str(tmp_path / "idx"))
    assert run.returncode == 1 and "--baseline" in run.stderr and "--corpus" in run.stderr


def test_distillation_chunks_know_the_questions_they_answer() -> None:
    """evals.distill_small: each chunk lists the questions whose answer starts inside it, offsets carried across
    the paragraphs joined into one article (as ingestion joins them)."""
    from evals.distill_small import chunks_with_questions

    sentences = [f"Sentence {i} says the harbour held {i + 10} trawlers on day {i}." for i in range(60)]
    paragraphs = [" ".join(sentences[i:i + 10]) for i in range(0, 60, 10)]
    qas = []
    for p_index, context in enumerate(paragraphs):
        answer = f"{p_index * 10 + 17} trawlers"
        qas.append({"context": context, "qas": [{"question": f"How many trawlers, paragraph {p_index}?",
                                                  "answers": [{"text": answer, "answer_start": context.index(answer)}]}]})
    texts, asked, questions = chunks_with_questions([{"title": "Harbour_report", "paragraphs": qas}])
    assert len(texts) > 1 and len(questions) == 6
    assert all(t.startswith("Harbour report\n") for t in texts)
    for q, question in enumerate(questions):
        holders = [i for i, a in enumerate(asked) if q in a]
        answer = f"{int(question.split()[-1].rstrip('?')) * 10 + 17} trawlers"
        assert holders and all(answer in texts[i] for i in holders), (question, holders)


def test_distillation_texts_come_from_several_chunkings_each_once() -> None:
    """evals.distill_small --chunkings: other chunk sizes and overlaps add chunks that open at other sentences; a
    text two chunkings share (an article's first chunk) is kept once, with its questions."""
    import argparse

    from evals.distill_small import _chunkings, chunks_with_questions, training_chunks

    sentences = [f"Sentence {i} says the harbour held {i + 10} trawlers on day {i}." for i in range(80)]
    context = " ".join(sentences)
    answer = "57 trawlers"
    article = {"title": "Harbour_report", "paragraphs": [{"context": context, "qas": [
        {"question": "How many trawlers on day 47?", "answers": [{"text": answer, "answer_start": context.index(answer)}]}]}]}
    one, _, _ = chunks_with_questions([article], 160, 1)
    texts, asked, questions = training_chunks([article], [(160, 1), (160, 0), (110, 1)])
    assert texts[:len(one)] == one and len(texts) == len(set(texts)) > len(one)
    assert {t.split("\n", 1)[1].split(" says")[0] for t in texts} > {t.split("\n", 1)[1].split(" says")[0] for t in one}
    assert questions == ["How many trawlers on day 47?"]
    assert all((answer in t) == (0 in a) for t, a in zip(texts, asked, strict=True) if answer in t or a)
    assert _chunkings("160:1,110:0") == [(160, 1), (110, 0)]
    for bad in ("160", "160:1:2", "0:1", "160:-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            _chunkings(bad)
