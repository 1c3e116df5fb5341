"""The reading seam: the trained reader (the committed models/reader), the lexical one, and a reader of our own
plugged in; the pair layout both training and run time use; the training data derived from SQuAD 1.1."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from rag import Assistant
from rag.config import Settings
from rag.errors import ConfigError
from rag.reading import Reading
from rag.reading.lexical import MODEL_READS, LexicalReader
from rag.reading.pairs import MAX_TOKENS, encode_pair
from rag.reading.rerank import Candidate
from rag.reading.spans import SpanModel, default_span_dir
from rag.reading.trained import ONNX_FILE, ModelShape, OnnxReaderModel, TrainedReader, default_model_dir, span_text
from rag.text.sentences import sentence_spans
from rag.types import Article, Passage
from tests.expect import names

REPO = Path(__file__).resolve().parent.parent


def test_the_committed_reader_is_small_int8_and_documented() -> None:
    folder = default_model_dir()
    model = folder / ONNX_FILE
    assert model.is_file() and model.stat().st_size <= 30 * 1024 * 1024
    assert (folder / "tokenizer.json").is_file()
    card = (folder / "MODEL_CARD.md").read_text()
    for needed in ("all-MiniLM-L6-v2", "SQuAD 1.1", "CC BY-SA 4.0", "make reader", "held-out"):
        assert needed in card
    calibration = json.loads((folder / "calibration.json").read_text())
    assert 0.0 < calibration["min_support"] < 1.0 and calibration["sentences_read"] >= 1


@pytest.fixture(scope="module")
def trained_assistant(seed_assistant):
    """The seed index read by the trained reader (RAG_READER=trained)."""
    with Assistant(index_dir=seed_assistant.settings.index_dir, reader="trained") as assistant:
        yield assistant


def test_short_answers_come_from_the_span_head_by_default(seed_assistant) -> None:
    assert isinstance(seed_assistant.reader, LexicalReader) and seed_assistant.reader.spans is not None
    answer = seed_assistant.ask("On which TV channel did Ruslan Osipenko speak?")
    assert names(answer.short_answer, "Ukraine 24"), answer.short_answer  # no pattern of rag/reading/short.py finds it
    assert any("Ukraine 24" in c.quote for c in answer.citations)
    with Assistant(index_dir=seed_assistant.settings.index_dir, short_answers="patterns") as patterns:
        assert patterns.reader.spans is None
        assert patterns.ask("On which TV channel did Ruslan Osipenko speak?").short_answer == ""


@pytest.mark.parametrize(("sentence", "span", "question", "expected"), [
    # a name the question holds, beside its description, is dropped: the description is the answer
    ("Said international expert Ruslan Osipenko.", "international expert Ruslan Osipenko", "Who is Ruslan Osipenko?",
     "international expert"),
    ("Ruslan Osipenko, an expert, spoke.", "Ruslan Osipenko, an expert", "Who is Ruslan Osipenko?", "an expert"),
    # the question's other words stay: a name is not cut, a head noun not dropped
    ("It was found by Arthur H. Compton in 1923.", "Arthur H. Compton", "Who discovered the Compton Effect?",
     "Arthur H. Compton"),
    ("Then compound engines spread.", "compound engines", "What type of engines spread?", "compound engines"),
    ("The park is Yellowstone National Park.", "Yellowstone National Park", "Which national park flooded?",
     "Yellowstone National Park"),
    ("It rests on the Treaty on European Union.", "Treaty on European Union", "What is a source of European Union law?",
     "Treaty on European Union"),
    # words the question itself holds are no answer
    ("The Compton Effect was named.", "Compton Effect", "Who discovered the Compton Effect?", ""),
])
def test_the_short_answer_keeps_the_spans_words_but_a_described_name(sentence, span, question, expected) -> None:
    start = sentence.index(span)
    assert span_text(sentence, start, start + len(span), question) == expected


def test_the_committed_short_answer_model_is_small_int8_and_documented() -> None:
    folder = default_span_dir()
    model = folder / ONNX_FILE
    assert model.is_file() and model.stat().st_size <= 30 * 1024 * 1024
    assert (folder / "tokenizer.json").is_file() and ModelShape.load(folder) == ModelShape("sentence", MAX_TOKENS)
    card = (folder / "MODEL_CARD.md").read_text()
    for needed in ("all-MiniLM-L6-v2", "SQuAD 1.1", "CC BY-SA 4.0", "--span-only", "held-out"):
        assert needed in card
    assert json.loads((folder / "training.json").read_text())["settings"]["span_only"] is True


def test_the_short_answer_model_reads_the_best_sentence(seed_assistant) -> None:
    """RAG_SHORT_ANSWERS=span: the short answer and the span score from the reader model's own span head, one model
    reading each sentence once; RAG_SPAN_MODEL=models/span adds the short-answer model it was trained from as a
    second model; `model` is the reader's span head without the span score, `patterns` no model at all."""
    index = seed_assistant.settings.index_dir
    with Assistant(index_dir=index, short_answers="span") as own:
        assert isinstance(own.reader, LexicalReader) and own.reader.short is own.reader.spans is not None
        assert own.reader.spans.threads == 0  # no second model beside it: every core
        answer = own.ask("On which TV channel did Ruslan Osipenko speak?")
        assert answer.short_answer.startswith("Ukraine 24") and any("Ukraine 24" in c.quote for c in answer.citations)
    with Assistant(index_dir=index, short_answers="span", span_model=str(default_span_dir())) as spans:
        assert isinstance(spans.reader.short, SpanModel) and spans.reader.spans is not None
        assert names(spans.ask("On which TV channel did Ruslan Osipenko speak?").short_answer, "Ukraine 24")
    with Assistant(index_dir=index, short_answers="model") as head:
        assert head.reader.short is None and head.reader.spans is not None
    with Assistant(index_dir=index, short_answers="span", reader="trained") as trained:
        assert trained.reader.short is None  # the trained reader's own span head
        assert names(trained.ask("When did the protests in Kazakhstan begin?").short_answer, "January 2")
    with Assistant(index_dir=index, reader="trained", span_model=str(default_span_dir())) as trained:
        assert isinstance(trained.reader.short, SpanModel)


def test_the_short_answer_model_gives_characters_of_the_sentence(tmp_path: Path) -> None:
    text = "Kazakhstan protests. On January 7, the Interior Ministry said 26 protesters had been killed."
    article = Article(id="d", title="Protests in Kazakhstan", text=text)
    start = text.index("On January 7")
    sentence = Candidate("d", start, len(text), text[start:], rank=0)
    model = SpanModel()
    at = model.span("How many protesters were killed?", sentence, {"d": article})
    assert 0 <= at[0] < at[1] <= len(sentence.text) and sentence.text[at[0]:at[1]] == "26"
    assert model.span("How many protesters were killed?", sentence, {}) == at  # cached: the article is not read
    with pytest.raises(ConfigError, match="RAG_SHORT_ANSWERS"):
        SpanModel(tmp_path)
    (tmp_path / ONNX_FILE).write_bytes(b"")
    with pytest.raises(ConfigError, match=r"tokenizer\.json missing"):
        SpanModel(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.json").write_text('{"unit": "paragraph", "max_tokens": 192}')
    with pytest.raises(ConfigError, match="unknown unit"):
        SpanModel(tmp_path)


def test_the_model_reorders_the_lexical_readers_best_sentences(seed_assistant) -> None:
    """The default reader: the ranker's best `model_reads` sentences re-ordered by score + weight x the reader
    model's logit + span weight x the short-answer model's best-span score (the real models), every later sentence
    below them; both weights 0 is the ranker's order. The abstention reads the order without the span score."""
    reader = seed_assistant.reader
    question = "What did the protesters demand?"
    found = seed_assistant.retrieve(question)
    plain = LexicalReader(reader.ranker, spans=reader.spans, model_weight=0.0)  # the same ranker and its caches
    assert plain.span_weight == 0.0  # no short-answer model, no span score
    ranker_order = list(plain.read(question, found.pool, found.articles, found.query).sentences)
    with Assistant(index_dir=seed_assistant.settings.index_dir, model_weight=0.0, span_weight=0.0) as setting:
        assert setting.reader.model_weight == 0.0 and setting.reader.span_weight == 0.0
    n = reader.model_reads
    assert n == MODEL_READS and reader.span_weight > 0
    top = ranker_order[:n]
    logits = [r.logit for r in reader.spans.read_sentences(found.query, top, found.articles)]
    span_scores = [r.span_score for r in reader.short.read_sentences(found.query, top, found.articles)]
    combined = [top[i].score + reader.model_weight * logits[i] for i in range(n)]
    expected = sorted(range(n), key=lambda i: -(combined[i] + reader.span_weight * span_scores[i]))
    sentences = list(found.reading.sentences)
    assert [s.text for s in sentences[:n]] == [top[i].text for i in expected]
    assert [s.text for s in sentences[n:]] == [c.text for c in ranker_order[n:]]
    # re-based: the new first keeps the ranker's best score, and the gaps are those of the combined scores
    shift = top[0].score - max(combined)
    assert [s.score for s in sentences[:n]] == [round(z + shift, 4) for z in sorted(combined, reverse=True)]
    scores = [s.score for s in sentences]
    assert scores == sorted(scores, reverse=True)
    heavy = LexicalReader(reader.ranker, spans=reader.spans, model_weight=100.0, model_reads=len(ranker_order))
    by_model = heavy.read(question, found.pool, found.articles, found.query).sentences
    all_logits = [r.logit for r in reader.spans.read_sentences(found.query, ranker_order, found.articles)]
    assert by_model[0].text == ranker_order[max(range(len(ranker_order)), key=lambda i: all_logits[i])].text
    by_span = LexicalReader(reader.ranker, spans=reader.spans, model_weight=0.0, model_reads=len(ranker_order),
                            short=reader.short, span_weight=100.0)
    all_spans = [r.span_score for r in reader.short.read_sentences(found.query, ranker_order, found.articles)]
    assert by_span.read(question, found.pool, found.articles, found.query).sentences[0].text == \
        ranker_order[max(range(len(ranker_order)), key=lambda i: all_spans[i])].text
    with pytest.raises(ConfigError, match="model_weight"):
        Settings(model_weight=-1.0)
    with pytest.raises(ConfigError, match="span_weight"):
        Settings(span_weight=-1.0)


def test_the_models_weight_does_not_move_p_answerable_when_the_best_sentence_stays(seed_assistant) -> None:
    """The abstention reads the ranker's own scores: a heavy weight on the model widens the re-based lead of the
    best sentence, which must not read as doubt (margin's coefficient is negative) when the best stays the same."""
    reader = seed_assistant.reader
    plain = LexicalReader(reader.ranker, spans=reader.spans, model_weight=0.0)
    heavy = LexicalReader(reader.ranker, spans=reader.spans, model_weight=100.0, model_reads=2)
    compared = 0
    for question in ("Who requested CSTO troops?", "How many protesters were killed?",
                     "When did the protests in Kazakhstan begin?", "Who was given the interim duties of prime minister?"):
        found = seed_assistant.retrieve(question)
        by_ranker = plain.read(question, found.pool, found.articles, found.query)
        by_model = heavy.read(question, found.pool, found.articles, found.query)
        if by_model.sentences[0].text != by_ranker.sentences[0].text:
            continue
        compared += 1
        assert by_model.sentences[0].score - by_model.sentences[1].score > 1.0  # the re-based lead is wide
        assert by_model.support == by_ranker.support
    assert compared >= 2


def test_a_reading_does_not_depend_on_the_questions_asked_before(seed_assistant) -> None:
    """The int8 models quantise a batch's activations with one scale, so read or embedded in a batch, a sentence's
    logit and cosine depended on the sentences beside it, and those depended on what earlier questions had left in
    the caches. Each is now read and embedded alone: the same question gets the same sentences, scores and
    p(answerable) with empty caches and after other questions filled them."""
    reader = seed_assistant.reader
    question = "Who requested CSTO troops?"
    reader.clear_caches()
    fresh = seed_assistant.retrieve(question).reading
    reader.clear_caches()
    for other in ("What did the protesters demand?", "How many protesters were killed?",
                  "Which country sent paratroopers to Kazakhstan?"):
        seed_assistant.retrieve(other)
    again = seed_assistant.retrieve(question).reading
    assert [(s.text, s.score) for s in again.sentences] == [(s.text, s.score) for s in fresh.sentences]
    assert again.support == fresh.support and again.short_answer == fresh.short_answer


def test_a_pair_reads_the_same_alone_and_among_others() -> None:
    """The reader model reads each pair alone: its logit and span logits are the same whatever else is read."""
    import numpy as np
    from tokenizers import Tokenizer

    folder = default_model_dir()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    question = "Who requested CSTO troops?"
    pairs = [encode_pair(tokenizer, question, sentence) for sentence in (
        "Russia sent paratroopers.",
        "Kazakh President Kassym-Jomart Tokayev requested help from the CSTO on Wednesday.",
        "The CSTO is a military alliance of six former Soviet states led by Moscow, formed in 1992.")]
    model = OnnxReaderModel(folder / ONNX_FILE, threads=1)
    logits, starts, ends = model.run([p.ids for p in pairs], [p.type_ids for p in pairs])
    for i, pair in enumerate(pairs):
        alone, start, end = model.run([pair.ids], [pair.type_ids])
        assert alone[0] == logits[i]
        assert np.array_equal(start[0], starts[i]) and np.array_equal(end[0], ends[i])


def test_the_trained_reader_answers_and_refuses(trained_assistant) -> None:
    assert isinstance(trained_assistant.reader, TrainedReader)
    answer = trained_assistant.ask("Since when have protests been held in Kazakhstan?")
    assert not answer.abstained and names(answer.short_answer, "January 2"), answer.short_answer
    assert any("since January 2" in c.quote for c in answer.citations)
    refused = trained_assistant.ask("Who won the 2018 FIFA World Cup?")
    assert refused.abstained and not refused.citations


def test_the_trained_reader_reads_only_the_best_pre_scored_sentences(trained_assistant) -> None:
    reading = trained_assistant.retrieve("When did the protests in Kazakhstan begin?").reading
    assert reading.best is not None and "January 2" in reading.best.text
    assert reading.read == trained_assistant.reader.sentences_read < len(reading.sentences)
    scores = [s.score for s in reading.sentences]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores[: reading.read]) and all(s < 0 for s in scores[reading.read:])


def test_relevance_reads_a_sentence_on_demand(trained_assistant) -> None:
    found = trained_assistant.retrieve("How many people were detained?")
    assert found.reading.relevance is not None
    best = found.reading.best
    assert best is not None
    assert found.reading.relevance(best.doc_id, best.start_char, best.end_char) == pytest.approx(found.reading.support,
                                                                                                abs=1e-3)
    assert found.reading.relevance("no-such-doc", 0, 10) == 0.0


def test_reader_setting_picks_the_reader(tmp_path: Path) -> None:
    settings = Settings.from_env({"RAG_READER": "trained", "RAG_INDEX_DIR": str(tmp_path / "index")})
    with Assistant(settings=settings) as assistant:
        assert isinstance(assistant.reader, TrainedReader)
        assert assistant.answerer.min_support == assistant.reader.min_support
        assert assistant.answerer.rules == frozenset(assistant.reader.default_rules)
    with Assistant(index_dir=tmp_path / "index", answer_rules="naming,next") as assistant:
        assert isinstance(assistant.reader, LexicalReader) and assistant.answerer.rules == {"naming", "next"}
    with pytest.raises(ValueError, match="unknown answer rules"):
        Assistant(index_dir=tmp_path / "index", answer_rules="guess")
    with pytest.raises(ConfigError, match="reader must be one of trained, lexical"):
        Settings(reader="neural")
    assert Settings.from_env({"RAG_MIN_SUPPORT": "0.7"}).min_support == 0.7
    assert Settings.from_env({}).min_support is None  # the reader's own fitted threshold


def test_a_missing_reader_model_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make reader"):
        Assistant(index_dir=tmp_path / "index", reader="trained", reader_model=str(tmp_path / "nothing-here"))
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "model.json").write_text('{"unit": "paragraph", "max_tokens": 512}')
    with pytest.raises(ConfigError, match="unknown unit"):
        ModelShape.load(tmp_path / "odd")
    assert ModelShape.load(tmp_path) == ModelShape("sentence", MAX_TOKENS)  # no model.json: a sentence model


class KeywordReader:
    """A reader of our own: the first sentence holding the question's last word answers, with certainty; every
    other sentence scores 0."""

    name = "keyword"
    min_support = 0.5
    second_margin = 0.0
    next_margin = 0.0
    default_rules: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.questions: list[str] = []
        self.closed = False

    def read(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
             query: str = "") -> Reading:
        self.questions.append(question)
        word = question.rstrip("?").split()[-1].lower()
        sentences: list[Candidate] = []
        for rank, p in enumerate(passages):
            text = articles[p.doc_id].text
            for start, end in sentence_spans(text, p.start_char, p.end_char):
                first = word in text[start:end].lower() and not any(c.score for c in sentences)
                sentences.append(Candidate(p.doc_id, start, end, text[start:end], rank, 1.0 if first else 0.0))
        sentences.sort(key=lambda c: -c.score)
        return Reading(tuple(sentences), sentences[0].score if sentences else 0.0, read=len(sentences))

    def clear_caches(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_another_reader_plugs_in(tmp_path: Path, corpus_dir: Path) -> None:
    reader = KeywordReader()
    with Assistant(index_dir=tmp_path / "index", reader=reader) as assistant:
        assistant.ingest([corpus_dir])
        answer = assistant.ask("Which TV channel aired the words of Osipenko?")
        assert reader.questions == ["Which TV channel aired the words of Osipenko?"]
        assert not answer.abstained and "Osipenko" in answer.citations[0].quote
        assert len(answer.citations) == 1  # no second sentence, no rules: what the reader said, composed
        refused = assistant.ask("Who won the cup xylophone?")
        assert refused.abstained and refused.support == 0.0
    assert not reader.closed  # a given reader is its owner's to close


def test_the_two_models_read_side_by_side_and_closing_stops_the_thread(tmp_path: Path, corpus_dir: Path) -> None:
    """A second short-answer model (RAG_SPAN_MODEL) reads on a thread of the reader while the reader's model reads
    on the caller's, each on half the cores; Assistant.close stops that thread."""
    from rag.reading.lexical import PAIR_THREADS

    before = set(threading.enumerate())
    with Assistant(index_dir=tmp_path / "index", span_model=str(default_span_dir())) as assistant:
        assistant.ingest([corpus_dir])
        assert not assistant.ask("Which TV channel aired the words of Osipenko?").abstained
        reader = assistant.reader
        assert isinstance(reader, LexicalReader) and reader.short is not None and reader.spans is not None
        assert reader.short.threads == reader.spans.threads == PAIR_THREADS
        started = [t for t in set(threading.enumerate()) - before if t.name.startswith("short-answer-model")]
        assert len(started) == 1
    assert not started[0].is_alive()


def test_pair_layout_maps_the_sentence_back_to_its_characters() -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    sentence = "Since then, 26 protesters have been killed, the Interior Ministry said."
    pair = encode_pair(tokenizer, "How many protesters were killed?", sentence, "Kazakhstan protests",
                       "Protests began on January 2.")
    assert pair.ids[0] == tokenizer.token_to_id("[CLS]") and pair.ids.count(tokenizer.token_to_id("[SEP]")) == 3
    assert pair.type_ids[: pair.sentence_from] == [0] * pair.sentence_from
    assert set(pair.type_ids[pair.sentence_from:]) == {1}
    words = [sentence[a:b] for a, b in pair.offsets]
    assert words[:4] == ["since", "then", ",", "26"] or words[:4] == ["Since", "then", ",", "26"]
    long = encode_pair(tokenizer, "why " * 80, "word " * 300, "title " * 30, "before " * 60)
    assert len(long.ids) <= MAX_TOKENS and len(long.offsets) >= 16


def test_altered_questions_no_longer_match_their_sentence() -> None:
    from evals.reader_data import alter

    rng = random.Random(0)
    sentence = "In 1887, the Paris Exposition opened its largest hall to 30,000 visitors from Europe."
    article = sentence + " The London Fair of 1851 drew smaller crowds. Its organisers praised the Crystal Palace."
    seen = set()
    for _ in range(60):
        altered = alter("When did the Paris Exposition open its largest hall?", sentence, article, rng)
        assert altered is not None
        question, how = altered
        assert question != "When did the Paris Exposition open its largest hall?"
        seen.add(how)
        if how == "opposite":  # largest -> smallest, or open -> closed
            assert "smallest" in question or "closed" in question
        if how == "negation":
            assert "did the Paris Exposition not open" in question or " not " in question
    assert {"name", "opposite", "negation", "word"} <= seen


def test_training_pairs_never_use_a_sentence_holding_the_answer_as_a_negative() -> None:
    from evals.reader_data import Paragraph, Question, examples_for

    text = ("The bridge opened in 1932. It was designed by John Bradfield. Bradfield also planned the railway. "
            "The railway opened later, in 1932, beside the bridge.")
    paragraphs = [[Paragraph("Bridge", text, tuple(sentence_spans(text)))]]
    q = Question("q", "When did the bridge open?", "1932", text.index("1932"), 0, 0)
    examples = list(examples_for(q, paragraphs, random.Random(1), paragraph_negatives=3))
    positive = [x for x in examples if x.label]
    assert len(positive) == 1 and positive[0].sentence == "The bridge opened in 1932."
    assert positive[0].sentence[positive[0].answer_start:positive[0].answer_end] == "1932"
    assert all("1932" not in x.sentence for x in examples if x.label == 0 and x.kind in ("paragraph", "article"))


def test_window_examples_hold_whole_sentences_and_the_answer_only_where_labelled() -> None:
    from evals.reader_data import Paragraph, Question, window_examples_for

    first = ("The bridge opened in 1932 after eight years of work. It was designed by John Bradfield, who had "
             "studied bridges in Europe and America. Bradfield also planned the railway that crosses it.")
    second = ("The railway across the harbour was electrified later. Trains crossed the bridge from the north "
              "shore. The bridge carries eight lanes of road traffic today.")
    paragraphs = [[Paragraph("Bridge", t, tuple(sentence_spans(t))) for t in (first, second)]]
    q = Question("q", "When did the bridge open?", "1932", first.index("1932"), 0, 0)
    for seed in range(20):
        examples = list(window_examples_for(q, paragraphs, random.Random(seed), paragraph_negatives=2,
                                            article_negatives=2))
        positive = [x for x in examples if x.label]
        assert len(positive) == 1 and positive[0].sentence[positive[0].answer_start:positive[0].answer_end] == "1932"
        for x in examples:
            assert x.spans and all(x.sentence[a:b] in (first + second) for a, b in x.spans)  # whole sentences
            assert x.sentence.startswith(x.sentence[slice(*x.spans[0])])
            if x.label == 0 and not x.kind.startswith("altered"):
                assert "1932" not in x.sentence
        assert {x.kind for x in examples} >= {"answer", "article"}


def test_window_scores_follow_the_span_head() -> None:
    import numpy as np

    from rag.reading.trained import sentence_scores

    offsets = [(0, 3), (4, 7), (8, 11), (12, 15)]  # two sentences of two word pieces each
    start, end = np.array([0.0, 0.0, 4.0, 0.0]), np.array([0.0, 0.0, 0.0, 4.0])
    scores = sentence_scores(2.0, start, end, 0, offsets, [(0, 7), (8, 15)])
    assert scores[1] == (2.0, 2, 3) and scores[0][0] < 2.0  # the span head points into the second
    assert sentence_scores(2.0, start, end, 0, offsets, [(0, 7), (20, 30)])[1] == (2.0 - 20.0, -1, -1)  # cut off


@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory) -> tuple[list[str], Path, subprocess.CompletedProcess[str]]:
    """`make reader`'s command on a few questions, window unit, one layer: (the command, its --out, the run)."""
    data = REPO.parent / "shared" / "data"
    if not (data / "squad11-train").is_dir():
        pytest.fail(f"{data / 'squad11-train'} is missing: the shared data folder must sit beside the repo")
    tmp = tmp_path_factory.mktemp("train")
    command = [sys.executable, "-m", "evals.train_reader", "--unit", "window", "--questions", "12",
               "--held-out-questions", "4", "--layers", "1", "--batch-size", "8", "--checkpoint-steps", "2",
               "--threads", "1", "--out", str(tmp / "out"), "--work", str(tmp / "work")]
    return command, tmp / "out", subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_training_command_runs_exports_and_resumes(tiny_training) -> None:
    """`make reader` end to end on a few questions: data, training, held-out figures, int8 export; run again,
    it resumes from its checkpoint instead of training anew."""
    command, out, first = tiny_training
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads((out / "training.json").read_text())
    assert summary["settings"]["layers"] == 1 and summary["held_out"]["int8_onnx"]["questions"] >= 1
    assert ModelShape.load(out) == ModelShape("window", summary["max_tokens"])
    assert (out.parent / "work" / "checkpoint.pt").is_file()
    second = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resumed at step {summary['steps']}" in second.stdout
    model = OnnxReaderModel(out / ONNX_FILE, threads=1)
    logits, starts, _ = model.run([[101, 2040, 102, 2002, 102]], [[0, 0, 0, 1, 1]])
    assert logits.shape == (1,) and starts[0].shape == (5,)


@pytest.mark.slow
def test_a_span_only_training_learns_the_span_of_answer_sentences_alone(tmp_path: Path) -> None:
    """`--span-only` (models/span): each question gives its answer sentence alone, and the run says so."""
    command = [sys.executable, "-m", "evals.train_reader", "--span-only", "--questions", "16",
               "--held-out-questions", "4", "--layers", "1", "--batch-size", "8", "--checkpoint-steps", "2",
               "--threads", "1", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    run = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "training.json").read_text())
    assert summary["settings"]["span_only"] is True and set(summary["pairs_by_kind"]) == {"answer"}
    assert 12 <= summary["pairs"] <= 16  # an answer crossing a sentence boundary gives no example
    assert summary["held_out"]["int8_onnx"]["answer_sentence_span_f1"] >= 0.0
    assert SpanModel(tmp_path / "out").shape == ModelShape("sentence", MAX_TOKENS)
    # A reader can start from it (`--init-from`): its body and span head, dequantised, then the usual training.
    reader = [*command[:3], "--questions", "12", *command[6:-4], "--init-from", str(tmp_path / "out"),
              "--out", str(tmp_path / "reader"), "--work", str(tmp_path / "reader-work")]
    run = subprocess.run(reader, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"started from {tmp_path / 'out' / ONNX_FILE}" in run.stdout
    summary = json.loads((tmp_path / "reader" / "training.json").read_text())
    assert summary["settings"]["init_from"] == str(tmp_path / "out") and not summary["settings"]["span_only"]


def test_a_model_starts_from_the_weights_of_a_committed_export() -> None:
    """`--init-from models/span`: the int8 ONNX's weights, dequantised into the torch network, read a pair as the
    ONNX session does (up to int8 noise), and the answer head (untrained in a short-answer model) is left new."""
    import numpy as np
    import torch
    from tokenizers import Tokenizer

    from evals.train_reader import load_onnx_weights, make_model, weights_of_onnx
    from rag.index.embed import resolve_model_path

    folder = default_span_dir()
    weights = weights_of_onnx(folder / ONNX_FILE)
    assert "body.encoder.layer.5.output.dense.weight" in weights and "span.weight" in weights
    assert not any(name.startswith(("answer.", "body.embeddings.word_embeddings.")) for name in weights)
    model = make_model(Path(resolve_model_path("")), 6)
    answer_before = model.answer.weight.detach().clone()
    assert load_onnx_weights(model, folder / ONNX_FILE) == len(weights)
    assert torch.equal(model.answer.weight, answer_before)
    model.eval()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    pair = encode_pair(tokenizer, "Who requested CSTO troops?",
                       "Kazakh President Kassym-Jomart Tokayev requested help from the CSTO on Wednesday.")
    with torch.no_grad():
        _, start, end = model(torch.tensor([pair.ids]), torch.ones(1, len(pair.ids), dtype=torch.long),
                              torch.tensor([pair.type_ids]))
    _, onnx_starts, onnx_ends = OnnxReaderModel(folder / ONNX_FILE, threads=1).run([pair.ids], [pair.type_ids])
    assert np.corrcoef(start[0].numpy(), onnx_starts[0])[0, 1] > 0.98
    assert np.corrcoef(end[0].numpy(), onnx_ends[0])[0, 1] > 0.98


class _CountingModel:
    """The real ONNX session, counting the rows it reads (a spy: every output is the model's)."""

    def __init__(self, model) -> None:
        self.model = model
        self.rows = 0

    def run(self, ids, type_ids):
        self.rows += len(ids)
        return self.model.run(ids, type_ids)


@pytest.mark.slow
def test_a_window_model_reads_neighbouring_sentences_in_one_window(tiny_training, seed_assistant) -> None:
    """A window model (the tiny one trained above; its figures do not matter) reads the pre-scored sentences in
    windows: neighbours share one, so fewer rows than sentences, and each short answer lies in its sentence."""
    _, out, run = tiny_training
    assert run.returncode == 0, run.stderr[-2000:]
    (out / "calibration.json").write_text((default_model_dir() / "calibration.json").read_text())
    reader = TrainedReader(seed_assistant.ranker, out, threads=1)
    assert reader.shape.unit == "window"
    found = seed_assistant.retrieve("How many protesters were detained?")
    pre = reader.ranker.score(found.question, found.pool, found.articles, found.query, dense=False)[:8]
    spy = _CountingModel(reader.pairs.load()[0])
    reader.pairs.model = spy  # type: ignore[assignment]
    read = reader.read_sentences(found.query, pre, found.articles)
    assert len(pre) == 8 and 1 <= spy.rows < len(pre)
    for cand, (_, start, end, _) in zip(pre, read, strict=True):
        assert start == end == -1 or 0 <= start < end <= len(cand.text)
    rows = spy.rows
    assert reader.read_sentences(found.query, pre, found.articles) == read and spy.rows == rows  # cached
    reading = reader.read(found.question, found.pool, found.articles, found.query)
    assert reading.best is not None and 0.0 <= reading.support <= 1.0


class _CountingEncoder:
    """The real encoder, counting the texts it embeds (a spy, not a fake: every vector is the model's)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.texts: list[str] = []

    def encode(self, texts: list[str]):
        self.texts.extend(texts)
        return self.encoder.encode(texts)

    def encode_each(self, texts: list[str]):
        self.texts.extend(texts)
        return self.encoder.encode_each(texts)


def test_the_ranker_embeds_only_its_best_sentences_by_their_other_features(seed_assistant) -> None:
    from rag.reading.rerank import SentenceRanker

    question = "How many protesters were killed?"
    found = seed_assistant.retrieve(question)
    frequencies = seed_assistant.catalog.document_frequencies
    spy = _CountingEncoder(seed_assistant.embed_model)
    limited_ranker = SentenceRanker(spy, document_frequencies=frequencies, sentences_embedded=6)
    limited = limited_ranker.score(question, found.pool, found.articles)
    assert len(spy.texts) == 6 + 1 and len(limited) > 8  # six sentences, and the question
    embedded = set(spy.texts[:6])
    # Against every sentence embedded, through the same cache (each sentence is embedded alone, so its vector is
    # the same whichever sentences are embedded with it).
    limited_ranker.sentences_embedded = 0
    every = limited_ranker.score(question, found.pool, found.articles)
    assert len(spy.texts) == len(every) + 2  # the other sentences, and the question again
    dense_weight = limited_ranker.weights["dense"]
    lexical = {c.text: c.score - dense_weight * c.features[0] for c in every}
    # The six are the best without the dense similarity (scores are rounded to 4 decimals) ...
    assert min(lexical[t] for t in embedded) >= max(v for t, v in lexical.items() if t not in embedded) - 1e-3
    # ... and the others get the lowest of their cosines.
    cosine = {c.text: c.features[0] for c in every}
    floor = min(cosine[t] for t in embedded)
    for c in limited:
        assert c.features[0] == (cosine[c.text] if c.text in embedded else floor)
        assert c.score == pytest.approx(lexical[c.text] + dense_weight * c.features[0], abs=2e-4)
    # A limit above the number of sentences embeds them all: the same scores as no limit.
    limited_ranker.sentences_embedded = 1000
    wide = limited_ranker.score(question, found.pool, found.articles)
    assert [(c.text, c.score) for c in wide] == [(c.text, c.score) for c in every]
    with pytest.raises(ConfigError, match="sentences_embedded"):
        Settings(sentences_embedded=-1)
