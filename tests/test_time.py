"""Dates and time: every article's date and where it came from (ingest/dates.py), the period a question points
to (rag/retrieve/timeframe.py), and retrieval that prefers the story of the question's week over an older one on the
same topic, on a real index (Chroma in a temporary directory, the bundled model)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from ingest.clean import clean_html, clean_text
from ingest.dates import Dated, article_date, date_in_url, dateline_date, parse_date, trusted
from rag import Assistant
from rag.retrieve.timeframe import time_frame
from rag.types import Filters


@pytest.mark.parametrize(("value", "expected"), [
    ("2022/06/16", "2022-06-16"), ("2022-06-16T23:10:00+02:00", "2022-06-16"), ("2022.06.16", "2022-06-16"),
    ("Jun 16 2022", "2022-06-16"), ("16 June 2022", "2022-06-16"), ("Thursday, June 16, 2022", "2022-06-16"),
    ("Thu, 16 Jun 2022 10:00:00 +0000", "2022-06-16"), ("06/16/2022", "2022-06-16"), ("16/06/2022", "2022-06-16"),
    (1655373600000, "2022-06-16"), ("2022-06", "2022-06"), ("2022", "2022"),
    ("2022-13-01", ""), ("yesterday", ""), ("", ""), (None, ""), (True, ""),
])
def test_metadata_dates_in_the_forms_datasets_and_feeds_use(value: object, expected: str) -> None:
    assert parse_date(value) == expected


def test_dates_from_urls_and_datelines_and_which_are_trusted() -> None:
    assert date_in_url("https://www.usatoday.com/story/news/2022/06/28/monkeypox/7760674001/") == "2022-06-28"
    assert date_in_url("https://www.example.com/article/4519301") == ""
    assert date_in_url("https://example.com/2022/19/99/x") == ""  # no such month: not a date
    assert dateline_date("Flood warning\nBy Ana Ruiz, June 3, 2022\nThe river rose.") == "2022-06-03"
    assert dateline_date("Published 4:05 PM EDT, Fri June 3, 2022\nThe river rose.") == "2022-06-03"
    assert dateline_date("The river last rose this high on June 3, 1998, when three bridges were lost.") == ""
    assert dateline_date("This is an updated version of a story that ran on March 17, 2022.\n\nThe Fed...") == ""
    now = datetime(2022, 7, 1)
    assert trusted("2022-07-02", now) and not trusted("2022-07-05", now) and not trusted("1850-01-01", now)
    # A date in the future of ingest is a typo: the next source is used, and the order is metadata, URL, page, text.
    assert article_date("2031-06-01", "https://e.com/2022/06/16/x", now=now).source == "url"
    assert article_date("", "", "2022-06-15", "June 14, 2022\nText", now=now) == Dated("2022-06-15", "page")
    assert article_date("", "https://e.com/x", "", "Text only.", now=now) == Dated("", "")


def test_cleaned_articles_say_where_their_date_came_from() -> None:
    from_url = clean_text("Heat wave\nThe heat broke records on Monday.", doc_id="a",
                          url="https://news.example/2022/07/18/heat-wave")
    assert (from_url.published, from_url.published_source) == ("2022-07-18", "url")
    dateline = clean_text("Heat wave\nJuly 18, 2022\nThe heat broke records on Monday.", doc_id="b")
    assert (dateline.published, dateline.published_source) == ("2022-07-18", "text")
    assert "July 18, 2022" in dateline.text  # the dateline is read, not removed
    page = clean_html("<html><head><meta property='article:published_time' content='2022-07-19T08:00:00Z'>"
                      "</head><body><article><p>The heat broke records on Monday across the region.</p>"
                      "<p>Officials opened cooling centres in twelve towns.</p></article></body></html>", doc_id="c")
    assert (page.published, page.published_source) == ("2022-07-19", "page")
    credit = clean_text("Heat wave\nThe heat broke records.\n(C)UNIAN 2022", doc_id="d")
    assert (credit.published, credit.published_source) == ("2022", "text")


@pytest.mark.parametrize(("question", "kind", "start", "end"), [
    ("What did the Senate pass this week?", "relative", "2022-06-10", "2022-06-17"),
    ("Who announced a run for governor yesterday?", "relative", "2022-06-16", "2022-06-16"),
    ("Which team won on Sunday?", "relative", "2022-06-12", "2022-06-12"),
    ("How much did prices rise last month?", "relative", "2022-05-01", "2022-05-31"),
    ("Who won the most medals in 2021?", "absolute", "2021-01-01", "2021-12-31"),
    ("What did the court rule in May 2022?", "absolute", "2022-05-01", "2022-05-31"),
    ("Who is the new prime minister?", "recent", "2022-05-27", "2022-06-17"),
    ("Which city hosts the New York marathon?", "", "2022-05-17", "2022-06-17"),
    ("Who will host the Olympics in 2032?", "", "2022-05-17", "2022-06-17"),  # after the question's date
    ("Which volcano erupted for the first time since 1984?", "", "2022-05-17", "2022-06-17"),
])
def test_time_words_resolve_against_the_question_date(question: str, kind: str, start: str, end: str) -> None:
    frame = time_frame(question, date(2022, 6, 17))  # a Friday
    assert (frame.kind, frame.start.isoformat(), frame.end.isoformat()) == (kind, start, end)


def test_a_named_window_is_preferred_not_required(archive: Assistant) -> None:
    """"This week" lifts the week's articles without hiding older ones: a page of the week before that answers
    is still read (news pages tell of an event days before or after it)."""
    frame = time_frame("Which film won best drama at the Golden Globes this week?", date(2022, 1, 20))
    found = archive.retrieve("Which film won best drama at the Golden Globes this week?",
                             filters=Filters(as_of="2022-01-20"))
    assert frame.kind == "relative" and found.pool[0].doc_id == "globes-2022"  # ten days before the window
    assert {p.doc_id for p in found.pool} >= {"globes-2021", "globes-2022"}


GLOBES = "The Golden Globes named {film} best motion picture drama on Sunday, and {actor} won best actor. "
YEARS = {  # what else each year's story says, so that the three are different stories, not copies of one
    2020: "The ceremony at the Beverly Hilton ran long, and the host joked about the streaming services.",
    2021: "Held mostly online because of the pandemic, the show had its smallest audience in decades.",
    2022: "No broadcast aired this year, and the winners were announced on social media after a boycott.",
}


def _write(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    """Three years of the same story (the Golden Globes), each with its winner, dated three ways."""
    tmp = tmp_path_factory.mktemp("archive")
    corpus = tmp / "corpus"
    corpus.mkdir()
    _write(corpus / "globes.jsonl", [
        {"id": "globes-2020", "title": "Golden Globes winners", "publish_date": "2020/01/06",
         "text": GLOBES.format(film="Ashfield Road", actor="Tomas Reyne") + YEARS[2020]},
        {"id": "globes-2021", "title": "Golden Globes winners", "url": "https://news.example/2021/03/01/globes",
         "text": GLOBES.format(film="Lantern Bay", actor="Odile Marchetti") + YEARS[2021]},
        {"id": "globes-2022", "title": "Golden Globes winners",
         "text": "January 10, 2022\n" + GLOBES.format(film="The Quiet Orchard", actor="Bram Okafor") + YEARS[2022]},
    ])
    assistant = Assistant(index_dir=tmp / "index")
    assert assistant.ingest([corpus]).added == 3
    yield assistant
    assistant.close()


def test_every_article_of_the_archive_has_a_date_and_its_source(archive: Assistant) -> None:
    dated = {a.id: (a.published, a.published_source) for a in archive.catalog.articles(
        ["globes-2020", "globes-2021", "globes-2022"]).values()}
    assert dated == {"globes-2020": ("2020-01-06", "metadata"), "globes-2021": ("2021-03-01", "url"),
                     "globes-2022": ("2022-01-10", "text")}


@pytest.mark.parametrize(("as_of", "winner"), [("2022-01-12", "The Quiet Orchard"), ("2021-03-03", "Lantern Bay"),
                                               ("2020-01-08", "Ashfield Road")])
def test_this_week_is_the_story_of_the_question_date(archive: Assistant, as_of: str, winner: str) -> None:
    question = "Which film won best drama at the Golden Globes this week?"
    answer = archive.ask(question, filters=Filters(as_of=as_of))
    assert not answer.abstained and winner in answer.text, answer.text
    assert answer.period.startswith("this week: articles of ")
    # Asked later, with no time words, the archive is searched neutrally (timeframe.PLAIN_LEAN): no year is
    # preferred, so every year's story is found and none is marked down for its age.
    plain = archive.search("Which film won best drama at the Golden Globes?", filters=Filters(as_of="2023-06-01"))
    assert {p.doc_id for p in plain} == {"globes-2020", "globes-2021", "globes-2022"}
    assert {p.recency for p in plain} == {0.0}


def test_the_period_says_when_no_cited_article_is_from_it(archive: Assistant) -> None:
    """The period is preferred, not required: asked in June 2022 about "this week", the story is January's, and the
    answer names the week it looked at and that its article is not from then."""
    answer = archive.ask("Which film won best drama at the Golden Globes this week?",
                         filters=Filters(as_of="2022-06-15"))
    assert "The Quiet Orchard" in answer.text, answer.text
    prefix = "this week: articles of 2022-06-08 to 2022-06-15; none cited is from then: "
    assert answer.period.startswith(prefix), answer.period
    cited = sorted({c.published for c in answer.citations})
    assert "2022-01-10" in cited and answer.period == prefix + ", ".join(cited)
    # A question that names no period gets no note, wherever its articles fall.
    assert archive.ask("Which film won best drama at the Golden Globes?", filters=Filters(as_of="2022-06-15")).period == ""
    # Asked within that week's reach, the period is named alone.
    assert archive.ask("Which film won best drama at the Golden Globes this week?",
                       filters=Filters(as_of="2022-01-12")).period == "this week: articles of 2022-01-05 to 2022-01-12"


def test_a_named_year_prefers_that_year_and_the_setting_turns_the_prior_off(archive: Assistant) -> None:
    question = "Which film won best drama at the Golden Globes in 2021?"
    answer = archive.ask(question, filters=Filters(as_of="2023-06-01"))
    assert "Lantern Bay" in answer.text and answer.period.startswith("in 2021: articles of 2021-01-01")
    off = Assistant(index_dir=archive.settings.index_dir, time_prior=False)
    found = off.retrieve(question, filters=Filters(as_of="2023-06-01"))
    assert found.frame is None and all(p.recency == 0.0 for p in found.pool)
    assert off.ask(question).period == ""
    off.close()


def test_a_window_with_no_articles_falls_back_to_the_whole_index(archive: Assistant) -> None:
    answer = archive.ask("Which film won best drama at the Golden Globes last week?", filters=Filters(as_of="2022-08-01"))
    assert not answer.abstained and "The Quiet Orchard" in answer.text  # nothing in late July: the latest story


def test_top_passages_carry_their_neighbouring_sentences() -> None:
    from rag.retrieve.hybrid import widen_passages
    from rag.types import Article, Passage

    text = "One is first. Two comes next. Three is the answer. Four follows it. Five ends here."
    article = Article(id="a", text=text)
    three = text.index("Three")
    chunk = Passage("a", "a#2", "Three is the answer.", three, three + 20, 0.9)
    four = text.index("Four")
    neighbour = Passage("a", "a#3", "Four follows it.", four, four + 16, 0.5)
    wide = widen_passages([chunk, neighbour], {"a": article}, context_chars=20)
    assert len(wide) == 1  # the two overlap once widened: one passage, at the first one's rank and best score
    (p,) = wide
    assert p.text == text[p.start_char:p.end_char] == "Two comes next. Three is the answer. Four follows it. Five ends here."
    assert (p.chunk_id, p.score) == ("a#2", 0.9)
    assert widen_passages([chunk], {"a": article}, context_chars=0) == [chunk]


def test_widened_answer_passages_stay_exact_spans_of_their_article(archive: Assistant) -> None:
    answer = archive.ask("Which film won best drama at the Golden Globes this week?",
                         filters=Filters(as_of="2022-01-12"))
    article = archive.article(answer.passages[0].doc_id)
    assert article is not None
    p = answer.passages[0]
    assert article.text[p.start_char:p.end_char] == p.text


def test_an_undated_corpus_is_retrieved_as_without_a_time_frame(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, town in enumerate(("Arlow", "Brenn", "Castor", "Dunmere", "Elsby", "Fairholt")):
        (corpus / f"{town}.txt").write_text(
            f"Flood in {town}\n\nThe river at {town} rose {i + 2} metres on Monday and {10 * (i + 1)} homes were "
            f"evacuated. The mayor of {town} said the new flood wall held. Volunteers filled sandbags all night.\n")
    with Assistant(index_dir=tmp_path / "index") as assistant:
        assistant.ingest([corpus])
        frame = assistant.time_frame("How many homes were evacuated this week?")
        assert frame is not None and frame.kind == "relative"
        for question in ("How many homes were evacuated this week?", "Which flood wall held?"):
            with_frame = assistant.retriever.run(question, 8, None, frame)
            assert with_frame == assistant.retriever.run(question, 8, None, None)
            assert all(p.recency == 0.0 for p in with_frame)
        answer = assistant.ask("How many homes were evacuated in Castor this week?")
        assert "30 homes" in answer.text and answer.period == ""  # no dated article: no period to name
