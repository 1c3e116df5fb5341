"""Article lead vectors (rag/index/leads.py): one transformer vector per article, kept with it in the catalog, and
the articles ranked by them as a third list in retrieval's fusion. Real catalog, real Chroma, the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant
from rag.errors import ConfigError
from rag.index.leads import lead_text, leads_wanted
from rag.retrieve.hybrid import Retriever
from rag.types import Filters

ARTICLES = [
    {"id": "volcano", "title": "Mauna Loa erupts for the first time since 1984", "source": "hawaii-news",
     "published": "2022-11-28",
     "text": "The world's largest active volcano began erupting on Sunday night, sending lava down its slopes. "
             "Officials said the lava flows posed no immediate threat to towns. Scientists at the observatory "
             "had warned of rising earthquake activity for weeks. Ash fell on nearby farms."},
    {"id": "election", "title": "Voters return the governor for a second term", "source": "state-wire",
     "published": "2022-11-09",
     "text": "The governor won re-election by eight points on Tuesday, carrying every large county. Turnout was "
             "the highest for a midterm in two decades. Her opponent conceded before midnight. Officials said the "
             "count would be certified within two weeks."},
    {"id": "football", "title": "Host nation loses the World Cup opener", "source": "sports-desk",
     "published": "2022-11-20",
     "text": "Ecuador beat Qatar two goals to nil in the opening match of the World Cup in Al Khor. Enner Valencia "
             "scored both goals in the first half. Officials said the stadium was nearly full. It was the first "
             "time a host nation lost its opening game."},
]


def _write(folder: Path, articles: list[dict[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "news.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")
    return folder


def test_lead_vectors_are_kept_with_their_articles(tmp_path: Path) -> None:
    corpus = _write(tmp_path / "corpus", ARTICLES)
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static", lead_vectors="on") as assistant:
        assert assistant.leads is not None
        report = assistant.ingest([corpus])
        assert report.added == 3
        assert assistant.catalog.meta("lead_model") == "all-MiniLM-L6-v2"
        rows = assistant.catalog.lead_rows()
        assert sorted(rows.doc_ids) == ["election", "football", "volcano"]
        # Each is the transformer's vector of the article's title and opening words, encoded in one batch as ingest
        # did (int8 activations are scaled per batch: the same text encoded alone differs in the third decimal).
        articles = [assistant.article(doc_id) for doc_id in rows.doc_ids]
        expected = assistant.embed_model.encode([lead_text(a) for a in articles if a is not None])
        stored = np.frombuffer(b"".join(rows.vectors), dtype=np.float32).reshape(3, -1)
        assert np.allclose(stored, expected, atol=1e-5)
        version = assistant.catalog.leads_version()
        assert assistant.ingest([corpus]).embedded == 0  # unchanged: nothing embedded, the leads as they were
        assert assistant.catalog.leads_version() == version

        ranker = assistant.leads
        ranks = ranker.rank("Which volcano erupted?", 3)
        assert sorted(ranks.values()) == [0, 1, 2] and next(iter(ranks)) == "volcano"
        assert next(iter(ranker.rank("Who scored in the World Cup opener?", 1))) == "football"
        # Filters apply to articles as to chunks: a question asked before the eruption does not see it.
        assert "volcano" not in ranker.rank("Which volcano erupted?", 3, Filters(as_of="2022-11-21"))
        assert set(ranker.rank("Which volcano erupted?", 3, Filters(sources=("state-wire",)))) == {"election"}
        assert ranker.rank("Which volcano erupted?", 3, Filters(published_to="2021")) == {}

        # A changed article gets a new lead vector in the same commit; the ranker reads it on its next question.
        changed = [dict(ARTICLES[0], title="Kilauea calm as tourists return",
                        text="Tourists returned to the park as the crater stayed quiet. " + ARTICLES[0]["text"])]
        _write(tmp_path / "corpus", changed + ARTICLES[1:])
        assert assistant.ingest([corpus]).updated == 1
        assert assistant.catalog.leads_version() != version
        article = assistant.article("volcano")
        assert article is not None and article.title.startswith("Kilauea")
        new = assistant.embed_model.encode([lead_text(article)])[0]  # the only article of its batch
        loaded = ranker._current()
        assert np.allclose(loaded.matrix[loaded.doc_ids.index("volcano")], new, atol=1e-5)
        # A removed article takes its lead vector with it.
        assert assistant.remove(["election"]) == 1
        assert sorted(assistant.catalog.lead_rows().doc_ids) == ["football", "volcano"]
        assert "election" not in ranker.rank("Who won the governor's race?", 3)


def test_the_lead_list_lifts_the_chunks_of_the_articles_it_ranks(tmp_path: Path) -> None:
    corpus = _write(tmp_path / "corpus", ARTICLES)
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static", lead_vectors="on") as assistant:
        assistant.ingest([corpus])
        assert isinstance(assistant.retriever, Retriever) and assistant.retriever.leads is assistant.leads
        question = "What did officials say?"  # every article's words: the lists alone barely tell them apart
        with_leads = assistant.retriever.run(question, 10)
        without = Retriever(assistant.chunk_encoder, assistant.vectors, assistant.catalog).run(question, 10)
        assert {p.chunk_id for p in with_leads} == {p.chunk_id for p in without}
        lead_ranks = assistant.leads.rank(question, 10 * 2) if assistant.leads else {}
        before = {p.chunk_id: p.score for p in without}
        for p in with_leads:  # each chunk gains its article's reciprocal rank in the lead list, nothing else
            gain = assistant.retriever.lead_weight / (assistant.retriever.rrf_k + lead_ranks[p.doc_id] + 1)
            assert p.score == pytest.approx(before[p.chunk_id] + gain, abs=2e-5)
        # The keyword mode measures keyword search alone: no lead list there.
        keyword = Retriever(assistant.chunk_encoder, assistant.vectors, assistant.catalog, mode="keyword",
                            leads=assistant.leads).run(question, 10)
        plain = Retriever(assistant.chunk_encoder, assistant.vectors, assistant.catalog, mode="keyword").run(question, 10)
        assert [(p.chunk_id, p.score) for p in keyword] == [(p.chunk_id, p.score) for p in plain]


def test_an_index_without_lead_vectors_keeps_working_and_gains_them_on_its_next_ingest(tmp_path: Path) -> None:
    corpus = _write(tmp_path / "corpus", ARTICLES)
    with Assistant(index_dir=tmp_path / "idx", chunk_encoder="static") as assistant:  # off unless asked for
        assert assistant.leads is None
        assistant.ingest([corpus])
        assert assistant.catalog.lead_rows().doc_ids == [] and assistant.catalog.meta("lead_model") is None
    with Assistant(index_dir=tmp_path / "idx", lead_vectors="on") as assistant:
        assert assistant.leads is not None and assistant.leads.rank("Which volcano erupted?", 3) == {}
        assert assistant.search("Which volcano erupted?")[0].doc_id == "volcano"
        report = assistant.ingest([corpus])  # the recipe changed: every article is embedded again, with its lead
        assert report.updated == 3 and report.embedded > 0
        assert sorted(assistant.catalog.lead_rows().doc_ids) == ["election", "football", "volcano"]


def test_lead_vectors_are_a_setting() -> None:
    assert leads_wanted("on") and not leads_wanted("off")
    with pytest.raises(ConfigError, match="lead_vectors"):
        leads_wanted("auto")
