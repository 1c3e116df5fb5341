"""Hybrid retrieval (BM25 kept in step with ingest), metadata filters, and near-duplicate collapsing,
on a real index (Chroma in a temporary directory, the bundled model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag import Assistant
from rag.types import Filters

WIRE = ("The Meridian Port Authority said on Tuesday that the new container terminal at Kessock Bay will open "
        "in March after a two-year delay caused by dredging disputes. Harbour master Ilona Vantreck told reporters "
        "that the terminal can handle 1.2 million containers a year once it is fully staffed. ")


def _write(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _record_chroma_queries(retriever: Any) -> tuple[list[object], Any]:
    """Each Chroma query the retriever makes from now on, as its `where` filter (None unfiltered) appended to the
    list returned; and the real query, to ask Chroma without recording."""
    calls: list[object] = []
    query = retriever.vectors.query

    def recording_query(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("where"))
        return query(*args, **kwargs)

    retriever.vectors.query = recording_query
    return calls, query


@pytest.fixture()
def news(tmp_path: Path) -> tuple[Assistant, Path]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write(corpus / "news.jsonl", [
        {"id": "herald-1", "source": "Harbour Herald", "published": "2022-03-02", "title": "Terminal delayed again",
         "text": "KESSOCK BAY - " + WIRE + "Local fishermen had opposed the dredging for years."},
        {"id": "wire-1", "source": "Coastal Wire", "published": "2022-03-01", "title": "Kessock terminal to open",
         "text": "By staff. " + WIRE + "The authority did not give the terminal's final cost."},
        {"id": "gazette-7", "source": "Valley Gazette", "published": "2021-11-20", "title": "Orchard harvest",
         "text": "Apple growers in the Lusk valley reported a record harvest of 48,000 tonnes this autumn. "
                 "Cooperative chair Mirela Oduya said warm weather in September helped the late varieties. "
                 "The serial number of the new sorting machine is QX-5521-B, the cooperative said."},
    ])
    assistant = Assistant(index_dir=tmp_path / "index")
    assert assistant.ingest([corpus]).added == 3
    yield assistant, corpus
    assistant.close()


def test_keyword_search_finds_a_code_and_follows_updates_and_removals(news: tuple[Assistant, Path]) -> None:
    assistant, corpus = news
    keyword = assistant.retriever.catalog.keyword_search(["QX-5521-B"], 5)
    assert [assistant.catalog.chunks([cid])[cid].doc_id for cid, _ in keyword] == ["gazette-7"]
    hybrid = assistant.search("Which machine has serial number QX-5521-B?", top_k=1)
    assert hybrid[0].doc_id == "gazette-7"

    # Rewrite the record without the code: the keyword index forgets it in the same commit.
    lines = (corpus / "news.jsonl").read_text().splitlines()
    gazette = json.loads(lines[2])
    gazette["text"] = gazette["text"].replace("QX-5521-B", "ZZ-9")
    lines[2] = json.dumps(gazette)
    (corpus / "news.jsonl").write_text("\n".join(lines) + "\n")
    assert assistant.ingest([corpus]).updated >= 1
    assert assistant.catalog.keyword_search(["QX-5521-B"], 5) == []
    assert len(assistant.catalog.keyword_search(["ZZ-9"], 5)) == 1
    assistant.remove(["gazette-7"])
    assert assistant.catalog.keyword_search(["ZZ-9"], 5) == []
    assert assistant.catalog.keyword_search(["harvest"], 5) == []


def test_the_keyword_index_is_rebuilt_for_an_index_made_without_it(news: tuple[Assistant, Path]) -> None:
    assistant, _ = news
    db = assistant.catalog._db
    db.execute("DELETE FROM chunks_fts")
    db.execute("DELETE FROM meta WHERE key = 'keyword_index'")
    path = assistant.settings.index_dir
    assistant.close()
    reopened = Assistant(index_dir=path)
    assert len(reopened.catalog.keyword_search(["harvest"], 5)) == 1
    reopened.close()


def test_wire_story_in_two_outlets_is_cited_once_from_the_copy_nearest_the_question_date(
        news: tuple[Assistant, Path]) -> None:
    assistant, _ = news
    question = "How many containers a year can the Kessock Bay terminal handle?"
    answer = assistant.ask(question)  # asked today: the Herald's copy, a day later than the wire's, is nearer
    assert not answer.abstained and "1.2 million" in answer.text
    first = answer.citations[0]
    assert first.doc_id == "herald-1"
    assert [r.doc_id for r in first.also_in] == ["wire-1"] and first.also_in[0].source == "Coastal Wire"
    assert sum(p.doc_id in ("wire-1", "herald-1") and "1.2 million" in p.text for p in answer.passages) == 1
    # Asked on the wire's day, the Herald's copy is not out yet; with the time prior off, the earliest copy wins.
    assert assistant.ask(question, filters=Filters(as_of="2022-03-01")).citations[0].doc_id == "wire-1"
    timeless = Assistant(index_dir=assistant.settings.index_dir, time_prior=False)
    assert timeless.ask(question).citations[0].doc_id == "wire-1"
    timeless.close()


def test_preferred_source_wins_the_duplicate(news: tuple[Assistant, Path]) -> None:
    assistant, _ = news
    preferring = Assistant(index_dir=assistant.settings.index_dir, preferred_sources="Harbour Herald")
    answer = preferring.ask("How many containers a year can the Kessock Bay terminal handle?")
    assert answer.citations[0].doc_id == "herald-1"
    assert [r.doc_id for r in answer.citations[0].also_in] == ["wire-1"]
    preferring.close()


def test_filters_by_source_and_date(news: tuple[Assistant, Path]) -> None:
    assistant, _ = news
    question = "When will the Kessock Bay container terminal open?"
    only_herald = assistant.ask(question, filters=Filters(sources=("Harbour Herald",)))
    assert {c.doc_id for c in only_herald.citations} == {"herald-1"}
    assert {p.doc_id for p in only_herald.passages} == {"herald-1"}
    assert all(not c.also_in for c in only_herald.citations)  # the wire copy is filtered out, not listed

    before = assistant.search(question, filters=Filters(published_to="2022-03-01"))
    assert {p.doc_id for p in before} <= {"wire-1", "gazette-7"} and "wire-1" in {p.doc_id for p in before}
    old = assistant.search(question, filters=Filters(published_from="2021", published_to="2021-12"))
    assert {p.doc_id for p in old} == {"gazette-7"}
    assert assistant.search(question, filters=Filters(sources=("Nobody",))) == []
    refused = assistant.ask(question, filters=Filters(sources=("Nobody",)))
    assert refused.abstained and not refused.citations


def test_as_of_hides_later_articles_but_not_undated_ones(news: tuple[Assistant, Path]) -> None:
    assistant, corpus = news
    (corpus / "undated.txt").write_text("Terminal notes\n\nThe Kessock Bay container terminal will open in March, "
                                         "the port authority repeated.\n")
    assert assistant.ingest([corpus]).added == 1
    question = "When will the Kessock Bay container terminal open?"
    seen = {p.doc_id for p in assistant.search(question, top_k=10, filters=Filters(as_of="2022-03-01"))}
    assert "herald-1" not in seen and "wire-1" in seen and any(d.endswith("undated.txt") for d in seen)
    later = assistant.search(question, top_k=10, filters=Filters(as_of="2022-03-02"))
    # Seen again, as the copy nearest the question's date, with the wire's listed as the same text.
    assert "herald-1" in {p.doc_id for p in later} and "wire-1" in {d.doc_id for p in later for d in p.duplicates}
    answer = assistant.ask(question, filters=Filters(as_of="2021-12-31"))
    assert all(c.doc_id != "wire-1" and c.doc_id != "herald-1" for c in answer.citations)


def test_a_filter_no_article_passes_searches_nothing(news: tuple[Assistant, Path]) -> None:
    """When no article passes the filters (a week the archive does not reach, a source it lacks), the retriever
    returns nothing without searching (Chroma's filtered search scans every chunk to find none); the catalog's
    (source, day) pairs are read again after a write."""
    assistant, corpus = news
    catalog, retriever = assistant.catalog, assistant.retriever
    assert catalog.admits_any() and catalog.admits_any(("Coastal Wire",), (20220301, 20220301))
    assert not catalog.admits_any(("Coastal Wire",), (20220302, 20221231))  # the Herald's day, not the Wire's
    assert not catalog.admits_any(("Nobody",)) and not catalog.admits_any((), (20230101, 99999999))
    calls, _ = _record_chroma_queries(retriever)
    question = "When will the Kessock Bay container terminal open?"
    assert retriever.run(question, 5, Filters(published_from="2023")) == [] and calls == []
    assert retriever.run(question, 5, Filters(published_from="2022-03")) and calls
    _write(corpus / "later.jsonl", [{"id": "later-1", "source": "Coastal Wire", "published": "2023-02-01",
                                     "title": "Terminal opens", "text": "The Kessock Bay terminal opened today."}])
    assert assistant.ingest([corpus]).added == 1
    assert catalog.admits_any((), (20230101, 99999999))
    assert [p.doc_id for p in retriever.run(question, 5, Filters(published_from="2023"))] == ["later-1"]


def test_bad_filter_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="YYYY"):
        Filters(published_from="March 2022")


def test_cli_filters_and_also_in(news: tuple[Assistant, Path]) -> None:
    from tests.test_cli import _rag

    assistant, _ = news
    index = str(assistant.settings.index_dir)
    out = _rag("ask", "How many containers a year can the Kessock Bay terminal handle?", "--index", index, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["citations"][0]["also_in"][0]["doc_id"] == "wire-1" and data["support"] > 0
    assert (data["citations"][0]["published"], data["citations"][0]["published_source"]) == ("2022-03-02", "metadata")
    out = _rag("ask", "How many containers a year can the terminal handle?", "--index", index,
               "--source", "Valley Gazette", "--until", "2021")
    assert out.returncode == 0 and "1.2 million" not in out.stdout
    bad = _rag("ask", "anything?", "--index", index, "--since", "yesterday")
    assert bad.returncode == 1 and "--since/--until" in bad.stderr
    out = _rag("ask", "When will the Kessock Bay container terminal open?", "--index", index, "--as-of", "2022-03-01",
               "--json")
    assert out.returncode == 0, out.stderr
    assert "herald-1" not in {c["doc_id"] for c in json.loads(out.stdout)["citations"]}


def test_filtered_dense_search_checks_unfiltered_neighbours_first(tmp_path: Path) -> None:
    """A broad filter is applied to Chroma's unfiltered nearest chunks (its filtered search is ~30x slower);
    a narrow one, that too few of them pass, goes to Chroma's filtered search. Both give what Chroma's filtered
    search gives."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    towns = ["Arlen", "Bexley", "Corran", "Dunmore", "Eskdale", "Fenwick", "Garron", "Hollin", "Irvale", "Jessop"]
    _write(corpus / "floods.jsonl", [
        {"id": f"flood-{i}", "source": "Harbour Herald" if i % 4 else "Valley Gazette",
         "published": f"2022-{1 + i // 10:02d}-{1 + i % 10:02d}", "title": f"Flood warning in {towns[i % 10]}",
         "text": f"The river in {towns[i % 10]} rose {i + 2} feet overnight, and {i * 30 + 40} homes were evacuated. "
                 f"Flood barriers on the {towns[(i + 3) % 10]} road held, the council said."}
        for i in range(60)
    ])
    assistant = Assistant(index_dir=tmp_path / "index")
    try:
        assert assistant.ingest([corpus]).added == 60
        retriever = assistant.retriever
        calls, query = _record_chroma_queries(retriever)
        embedding = [float(x) for x in assistant.chunk_encoder.encode(["How many homes were evacuated by the flood?"])[0]]
        for filters, narrow in ((Filters(as_of="2022-05-31"), False), (Filters(published_from="2022-06-10"), True),
                                (Filters(sources=("Harbour Herald",), published_to="2022-05"), False)):
            calls.clear()
            got = retriever._dense(embedding, 10, filters)
            assert (filters.chroma_where() in calls) == narrow
            expected = [cid for cid, _ in query(embedding, 10, where=filters.chroma_where())]
            assert got == expected[: len(got)] and len(got) == min(10, len(expected))
            chunks = assistant.catalog.chunks(got)
            articles = assistant.catalog.articles(c.doc_id for c in chunks.values())
            for cid in got:
                article = articles[chunks[cid].doc_id]
                assert not filters.sources or article.source in filters.sources
                assert filters.day_range()[0] <= int(article.published.replace("-", "")) <= filters.day_range()[1]
    finally:
        assistant.close()


def test_keyword_search_leaves_out_words_too_common_to_score(tmp_path: Path) -> None:
    """On a big index a word in most chunks ("said") is left out of the BM25 query while rarer words of the
    question remain (Catalog.rare_terms); kept when it is all there is; below the size limit nothing is counted.
    The limit is lowered here so that a 40-article corpus counts as big."""
    from rag.index.catalog import Catalog

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        extra = " The trawler Keldmouth was said to have sunk." if i == 7 else ""
        (docs / f"{i}.md").write_text(f"# Report {i}\n\nOfficials said the harbour opened on day {i}.{extra}\n")
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="transformer") as assistant:
        assistant.ingest([docs])
        catalog = assistant.catalog
        assert catalog.chunk_count() == 40 < catalog.common_term_min_chunks
        assert catalog.rare_terms(["said", "Keldmouth"]) == ["said", "Keldmouth"]  # small: nothing counted
        catalog.common_term_min_chunks = 10
        assert catalog.rare_terms(["said", "Keldmouth"]) == ["Keldmouth"]
        assert catalog.rare_terms(["said", "harbour"]) == ["said", "harbour"]  # only common words: all kept
        hits = catalog.keyword_search(["said", "Keldmouth"], 5)
        assert len(hits) == 1 and "Keldmouth" in catalog.chunks([hits[0][0]])[hits[0][0]].text
        # The count is cached, and counted again after a write by this connection or another.
        other = Catalog(tmp_path / "idx" / "catalog.sqlite3")
        assert other.chunk_count() == 40
        assert catalog.document_frequencies(["ferry"]) == ({"ferry": 0}, 40)  # counted before the write, kept
        (docs / "40.md").write_text("# Report 40\n\nA ferry ran late.\n")
        assistant.ingest([docs])
        assert catalog.chunk_count() == 41 and other.chunk_count() == 41
        assert catalog.document_frequencies(["ferry"]) == ({"ferry": 1}, 41) == other.document_frequencies(["ferry"])
        other.close()


def test_a_follow_up_of_a_follow_up_keeps_the_conversations_topic() -> None:
    """"What did Biden say about it?" after "Which justice wrote it?" after "What did the Supreme Court rule this
    week?": the topic is two questions back, so the previous question is itself made standalone first; questions
    that stand alone end the chain, and it reaches back over at most MAX_FOLLOW_UP_TURNS questions."""
    from rag.retrieve.hybrid import MAX_FOLLOW_UP_TURNS, standalone_query

    history = [("What did the Supreme Court rule this week?", "It struck down a gun law."),
               ("Which justice wrote it?", "Justice Alito.")]
    assert standalone_query("What did Biden say about it?", history) == (
        "What did the Supreme Court rule this week? Which justice wrote it? What did Biden say about it?")
    assert standalone_query("Who requested CSTO troops?", history) == "Who requested CSTO troops?"
    # A question that stands alone ends the chain ("this week" names a time, not something said before).
    assert standalone_query("Why?", [("Who is Ruslan Osipenko?", "An expert."), *history]) == (
        "What did the Supreme Court rule this week? Which justice wrote it? Why?")
    assert standalone_query("Who headed it?", [("Who is Ruslan Osipenko?", ""), ("Who requested CSTO troops?", "")]
                            ) == "Who requested CSTO troops? Who headed it?"
    chain = [(f"And then what happened to it {i}?", "") for i in range(6)]
    assert standalone_query("Why?", chain).count("?") == MAX_FOLLOW_UP_TURNS
