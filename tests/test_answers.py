"""Cited answers about the seed article, refusals when it does not say, and follow-ups."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Assistant
from rag.reading.cite import citation_errors
from rag.reading.lexical import SPAN_WEIGHT
from tests.expect import names

# (question, text the answer must contain, text the first citation's quote must contain)
SEED_QUESTIONS = [
    ("Who requested CSTO troops?", "Tokayev", "asked for help from the heads of state of the Collective Security"),
    ("who was given the interim duties of prime minister?", "Alikhan Smailov", "interim duties of prime minister"),
    ("How many protesters were killed?", "26 protesters", "26 protesters have been killed"),
    ("Which countries' troops were sent to Kazakhstan?", "Armenia, Belarus, Kyrgyzstan and Tajikistan", "troops of the Russian Federation"),
    ("How many people were detained?", "more than 3,000", "3,000 have been detained"),
    ("How many police and National Guard officers were killed?", "18 police and National Guard officers", "18 police"),
    ("Since when have protests been held in Kazakhstan?", "since January 2", "since January 2"),
    ("Why did people take to the streets?", "liquefied gas", "rise in prices for liquefied gas"),
    ("Who left the post of chairman of the Security Council?", "Nursultan Nazarbayev", "Nazarbayev left the post"),
    ("On which TV channel did Ruslan Osipenko speak?", "Ukraine 24", "Ukraine 24 TV channel"),
    ("Whose resignation did Tokayev accept?", "resignation of the government", "accepted the resignation of the government"),
    ("What did the Interior Ministry announce on January 7?", "26 protesters", "Interior Ministry announced"),
    ("how many officers were wounded", "748", "748 were wounded"),
    ("Who headed the Security Council?", "Tokayev", "Security Council was headed by Tokayev"),
    # Paraphrases in other news words (rag.text.words's synonym groups: death toll / killed, demonstrators / protesters)
    ("what was the death toll among demonstrators", "26 protesters", "26 protesters have been killed"),
]

OUT_OF_CORPUS = [
    "What is the capital of France?",
    "Who won the 2018 FIFA World Cup?",
    "How many troops were sent to Kazakhstan in total?",
    "When will the CSTO troops withdraw from Kazakhstan?",
    "What was the price of liquefied gas per litre?",
]


@pytest.mark.parametrize(("question", "expected", "quote_part"), SEED_QUESTIONS)
def test_seed_question_is_answered_with_an_exact_citation(seed_assistant, question, expected, quote_part) -> None:
    answer = seed_assistant.ask(question)
    assert not answer.abstained, question
    assert expected.lower() in answer.text.lower()
    assert any(quote_part in c.quote for c in answer.citations), [c.quote for c in answer.citations]
    articles = {c.doc_id: seed_assistant.article(c.doc_id) for c in answer.citations}
    assert citation_errors(answer, articles) == []
    assert answer.text.count("[1]") == 1


def test_who_requested_csto_troops_names_tokayev(seed_assistant) -> None:
    answer = seed_assistant.ask("who requested CSTO troops?")
    assert answer.citations[0].quote.startswith("The President of Kazakhstan asked for help")
    assert any("Tokayev" in c.quote for c in answer.citations)
    assert names(answer.short_answer, "Kassym-Zhomart Tokayev", "Tokayev"), answer.short_answer


@pytest.mark.parametrize("question", OUT_OF_CORPUS)
def test_out_of_corpus_question_is_refused(seed_assistant, question: str) -> None:
    answer = seed_assistant.ask(question)
    assert answer.abstained, answer.text
    assert answer.citations == ()
    assert "don't say" in answer.text


def test_comment_section_is_never_cited(seed_assistant) -> None:
    answer = seed_assistant.ask("Who does the reader call the rodent?")
    assert all("rodent" not in c.quote for c in answer.citations)


def test_follow_up_uses_the_history(seed_assistant) -> None:
    first = seed_assistant.ask("Who is Ruslan Osipenko?")
    follow = seed_assistant.ask("On which channel did he speak?", history=[("Who is Ruslan Osipenko?", first.text)])
    assert not follow.abstained
    assert "Ukraine 24" in follow.text


@pytest.mark.parametrize("question", ["", "   ", "\x00\x01", "?" * 10, "x" * 100_000])
def test_degenerate_questions_do_not_crash(seed_assistant, question: str) -> None:
    answer = seed_assistant.ask(question)
    assert isinstance(answer.text, str) and answer.text


def test_abstention_model_moves_the_right_way() -> None:
    from rag.reading.abstain import AbstentionModel, signals
    from rag.reading.rerank import Candidate

    model = AbstentionModel()
    weights = {"troop": 2.0, "csto": 3.0, "2022": 4.0}

    def cand(score: float, dense: float, text: str) -> Candidate:
        return Candidate("d", 0, len(text), text, 0, score, (dense, 0.8, 0.9, 0.0, 1.0, 1.0))

    strong = signals(weights, "How many CSTO troops came in 2022?", [cand(0.9, 0.7, "2,030 CSTO troops came in 2022.")])
    weak = signals(weights, "How many CSTO troops came in 2022?", [cand(0.5, 0.3, "2,030 CSTO troops came in 2022.")])
    no_year = signals(weights, "How many CSTO troops came in 2022?", [cand(0.9, 0.7, "2,030 CSTO troops came.")])
    assert no_year["missing_number"] == 1.0 and no_year["missing_rare"] == 1.0 and strong["missing_number"] == 0.0
    assert model.probability(strong) > model.probability(weak)
    assert model.probability(strong) > model.probability(no_year)
    other_year = signals(weights, "How many CSTO troops came in 2021?", [cand(0.9, 0.7, "2,030 CSTO troops came in 2022.")])
    assert other_year["swapped"] == 1.0 and strong["swapped"] == 0.0 and no_year["swapped"] == 0.0
    assert model.probability(other_year) < model.probability(no_year)  # another year named is worse than none
    assert signals(weights, "anything", []) == dict.fromkeys(signals(weights, "x", []), 0.0)


def test_search_reranks_passages_by_their_best_sentence(seed_assistant) -> None:
    passages = seed_assistant.search("How many police and National Guard officers were killed?", top_k=3)
    assert "18 police and National Guard officers were killed" in passages[0].text
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    # Widened by their neighbouring sentences, passages of the one article that would overlap are merged (the
    # seed's short article becomes one passage): none repeats another's text.
    assert 1 <= len(passages) <= 3
    spans = sorted((p.start_char, p.end_char) for p in passages)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))


@pytest.mark.parametrize(("question", "short"), [
    ("How many protesters were killed?", "26"),  # the 9,000-question model said "3,000" here
    ("How many police and National Guard officers were wounded?", "748"),
    ("When did the protests in Kazakhstan begin?", "January 2"),
    ("Who was given the interim duties of prime minister?", "Alikhan Smailov"),
])
def test_short_answer_is_the_asked_for_span_of_the_cited_sentence(seed_assistant, question: str, short: str) -> None:
    answer = seed_assistant.ask(question)
    assert names(answer.short_answer, short), answer.short_answer
    assert any(answer.short_answer in c.quote for c in answer.citations)


def test_who_is_question_gets_a_description_not_the_name_as_short_answer(seed_assistant) -> None:
    answer = seed_assistant.ask("Who is Ruslan Osipenko?")
    assert not answer.abstained and names(answer.short_answer, "international expert"), answer.short_answer
    assert "Osipenko" not in answer.short_answer
    assert any("international expert Ruslan Osipenko" in c.quote for c in answer.citations)


@pytest.fixture(scope="module")
def quiz_assistant(tmp_path_factory: pytest.TempPathFactory):
    """A small news corpus with a quiz page that repeats the questions word for word."""
    root = tmp_path_factory.mktemp("quiz")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "quiz.txt").write_text(
        "Weekly news quiz\n\nWhich company is being accused of turning off the air conditioning in its stores to "
        "save money? Which country was shaken by a 7.0-magnitude earthquake this week? Take the quiz to find out.\n")
    (corpus / "retail.txt").write_text(
        "Retailer under fire\n\nShoppers in Ohio complained that Bed Bath & Beyond stores felt hot last week. "
        "The company is reportedly turning off the air conditioning in its stores to save money as sales fall. "
        "Analysts said the cuts would not be enough.\n")
    (corpus / "quake.txt").write_text(
        "Quake damages churches\n\nA powerful earthquake struck the Philippines on Wednesday morning. "
        "The 7.0-magnitude quake shook the north of the main island this week, damaging old churches and roads. "
        "Rescue teams were sent within hours.\n")
    assistant = Assistant(index_dir=root / "index")
    assistant.ingest([corpus])
    yield assistant
    assistant.close()


def test_a_sentence_that_asks_is_never_the_answer(quiz_assistant) -> None:
    answer = quiz_assistant.ask("Which company is being accused of turning off the air conditioning in its stores "
                                "to save money?")
    assert not answer.abstained
    assert all(not c.quote.rstrip().endswith("?") for c in answer.citations), answer.text
    assert all(c.doc_id.endswith("retail.txt") for c in answer.citations)


def test_a_thing_named_only_by_description_gets_the_sentence_naming_it(quiz_assistant) -> None:
    """"The company is turning off the AC" answers "which company" only with the sentence before it, which names
    it: that sentence is cited, first (reading order), alone or with the one describing."""
    answer = quiz_assistant.ask("Which company is being accused of turning off the air conditioning in its stores "
                                "to save money?")
    assert [c.quote.split()[0] for c in answer.citations] in (["Shoppers"], ["Shoppers", "The"])
    assert "Bed Bath & Beyond" in answer.text
    articles = {c.doc_id: quiz_assistant.article(c.doc_id) for c in answer.citations}
    assert citation_errors(answer, articles) == []
    # The short-answer model reads both cited sentences: its best span is the name ("sales fall" in the best one).
    assert names(answer.short_answer, "Bed Bath & Beyond"), answer.short_answer


def test_the_short_answer_is_the_models_best_span_among_the_cited_sentences() -> None:
    """The composition alone, with a Reading made by hand (its `spans` a stand-in for the short-answer model, so
    that each case's scores are known): of the cited sentences, the one whose span scores best gives the short
    answer, over the reading's own and over a rule's name; a sentence a rule adds, or the second best, stays only
    when the model finds a span in it scoring close to the best sentence's; without a model (`spans` None) the rule's
    sentence and name stay."""
    from rag.reading import Reading
    from rag.reading.compose import ExtractiveAnswerer
    from rag.reading.rerank import Candidate
    from rag.types import Article

    text = "Bed Bath & Beyond stores felt hot last week. The company is turning off the air conditioning to save money."
    article = Article(id="retail", title="Retailer under fire", text=text)
    first = Candidate("retail", 0, text.index(" The"), text[: text.index(" The")], 0, 0.5)
    best = Candidate("retail", text.index("The"), len(text), text[text.index("The"):], 0, 0.9)
    question = "Which company is turning off the air conditioning?"
    scores = {first.start_char: ("last week", 2.0), best.start_char: ("to save money", 1.0)}

    def spans(sentences):
        return [scores[s.start_char] for s in sentences]

    answerer = ExtractiveAnswerer(min_support=0.1)
    with_model = answerer.run(question, [], {"retail": article}, Reading((best, first), 0.9, "to save money",
                                                                         spans=spans))
    assert len(with_model.citations) == 2 and with_model.short_answer == "last week"  # not the rule's name
    # The sentence the rule adds, and a second sentence that scores close to the best (second_margin, `close`), stay
    # only where the model sees an answer in them: a span scoring at least the best sentence's own minus
    # rule_span_margin (2.0).
    close = Candidate("retail", 0, first.end_char, first.text, 0, 0.88)
    for other in (first, close):
        for span, kept in ((("last week", -0.9), True), (("last week", -1.1), False), (("", 5.0), False)):
            scores[first.start_char] = span
            vetted = answerer.run(question, [], {"retail": article}, Reading((best, other), 0.9, "to save money",
                                                                             spans=spans))
            assert len(vetted.citations) == (2 if kept else 1), (other.score, span)
            assert vetted.short_answer == "to save money"  # the best sentence's span scores higher in each case
    without = answerer.run(question, [], {"retail": article}, Reading((best, first), 0.9, "to save money"))
    assert without.short_answer == "Bed Bath & Beyond" and len(without.citations) == 2  # the rule's, unvetted


def test_a_name_asked_for_is_taken_from_the_neighbouring_sentence(quiz_assistant) -> None:
    """The short-answer model's span score moves the sentence naming the country above the question's echo; with
    the ranker and the reader's logit alone (span_weight 0) the echo is best and the naming rule brings in the
    sentence before it."""
    question = "Which country was shaken by a 7.0-magnitude earthquake this week?"
    answer = quiz_assistant.ask(question)
    assert "Philippines" in answer.text and answer.citations[0].quote.startswith("A powerful earthquake"), answer.text
    reader = quiz_assistant.reader
    reader.span_weight = 0.0
    reader.clear_caches()
    try:
        answer = quiz_assistant.ask(question)
    finally:
        reader.span_weight = SPAN_WEIGHT
        reader.clear_caches()
    assert "Philippines" in answer.text, answer.text
    assert len(answer.citations) == 2 and "7.0-magnitude quake shook" in answer.citations[1].quote


def test_who_question_takes_the_person_from_the_next_sentence_when_the_best_names_only_the_asked(seed_assistant) -> None:
    """"Nursultan Nazarbayev left the post of chairman of the Security Council" matches the question best, but
    its names are the question's own; the person asked for is in the sentence after it."""
    answer = seed_assistant.ask("Who headed the Security Council after Nazarbayev left?")
    assert "Tokayev" in answer.text, answer.text
    assert [c.quote for c in answer.citations] == ["Nursultan Nazarbayev left the post of chairman of the Security "
                                                   "Council of Kazakhstan.", "The Security Council was headed by "
                                                   "Tokayev."]



@contextlib.contextmanager
def _one_article(tmp_path: Path, text: str) -> Iterator[Assistant]:
    """An assistant over a fresh index of one article."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "article.txt").write_text(text)
    with Assistant(index_dir=tmp_path / "index") as assistant:
        assistant.ingest([corpus])
        yield assistant

def test_the_sentence_after_the_best_joins_it_when_it_scores_close(tmp_path) -> None:
    """The article names its subject in one sentence and gives the number in the next, in other words."""
    with _one_article(tmp_path, "The great fire\n\nThe harbour town of Keldmouth was ravaged on May 3, 1901, by a "
                      "fire that began in a bakery kitchen. In just eight hours, the blaze swept through 146 blocks of "
                      "the town and destroyed over 2,000 buildings. The town council later banned wooden roofs. "
                      "Fishing boats in the harbour were untouched.\n") as assistant:
        question = "How many buildings were lost in the fire that ravaged the town of Keldmouth?"
        # The models put the number's sentence first; the sentence naming the fire scores close behind it, but the
        # short-answer model sees no answer in it, so it is not cited (RULE_SPAN_MARGIN).
        answer = assistant.ask(question)
        assert [c.quote.split()[0] for c in answer.citations] == ["In"] and "2,000" in answer.text, answer.text
        # Without the models re-ordering, the sentence naming the fire is best, and the rule adds the next one, in
        # reading order.
        assistant.reader.model_weight = assistant.reader.span_weight = 0.0
        assistant.reader.clear_caches()
        answer = assistant.ask(question)
        assert [c.quote.split()[0] for c in answer.citations] == ["The", "In"], answer.text
        # Without the rule as well: the best sentence alone, which lacks the number.
        assistant.answerer.next_margin = 0.0
        assert "2,000" not in assistant.ask(question).text


def test_a_sentence_with_the_opposite_of_the_asked_word_does_not_answer(tmp_path) -> None:
    """"The party with the lowest quotient" is not answered by "the party with the highest quotient"."""
    with _one_article(tmp_path, "How the seats are shared\n\nThe votes of each party are divided by the number of "
                      "seats it has already won, plus one. The party with the highest quotient is awarded the next "
                      "seat. Counting goes on until all seats of the region are filled.\n") as assistant:
        answered = assistant.ask("Which party is awarded the next seat?")
        assert not answered.abstained and "highest quotient" in answered.text
        refused = assistant.ask("The party with the lowest quotient is awarded what?")
        assert refused.abstained and not refused.citations, refused.text


def test_which_country_takes_the_country_from_a_sentence_two_away(tmp_path) -> None:
    """The sentence matching best names only an agency ("IMO announced…"); "Iceland" is two sentences before it."""
    with _one_article(tmp_path, "Volcano erupts\n\nThe Iceland Meteorological Office said the volcano erupted late on "
                      "Sunday. Footage from the office’s camera showed a cloud of ash rising over the fjord. IMO "
                      "announced a Level 5 alert, the highest level, calling for people to evacuate. IMO advised "
                      "caution to residents of nearby towns.\n") as assistant:
        answer = assistant.ask("A volcano eruption in which country prompted a Level 5 alert calling for people to "
                               "evacuate?")
        assert "Iceland" in answer.text, answer.text
        assert [c.quote.split()[0] for c in answer.citations] == ["The", "IMO"]  # reading order


def test_a_who_answer_is_the_role_holder_the_naming_sentence_names(tmp_path: Path) -> None:
    """"Its president has fled to Singapore" answers "Who fled Sri Lanka?" only with the sentence naming the
    president; the short answer is the name found there, not the best sentence's other span ("Singapore")."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lanka.txt").write_text(
        "Sri Lanka's president flees\n\nSri Lanka has plunged into chaos and its president has fled to Singapore, before "
        "emailing his resignation, as questions swirl about the country's future. Protesters still hold the "
        "presidential palace in Colombo. Embattled President Gotabaya Rajapaksa arrived in Singapore on a flight "
        "from the Maldives on Thursday, a security source said.\n")
    with Assistant(index_dir=tmp_path / "index") as assistant:
        assistant.ingest([corpus])
        answer = assistant.ask("Who fled Sri Lanka?")
    assert not answer.abstained
    assert any("Gotabaya Rajapaksa" in c.quote for c in answer.citations), answer.text
    assert names(answer.short_answer, "Gotabaya Rajapaksa"), answer.short_answer
    assert "Singapore" not in answer.short_answer
