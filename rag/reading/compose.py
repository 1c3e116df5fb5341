"""Extractive answering: the answer composed from a reader's best sentences, each cited, or a refusal."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from rag.reading import Reading
from rag.reading.cite import make_citation
from rag.reading.places import PLACE_KINDS, places
from rag.reading.rerank import Candidate
from rag.text.sentences import sentence_spans
from rag.text.words import PAST_FORMS, STOPWORDS, answer_type, content_stems, is_question, stem, tokens
from rag.types import Answer, AnswerPiece, Article, Citation, Passage

REFUSAL = "The articles in the corpus don't say."

# Roles that a sentence may use instead of a name ("The President of Kazakhstan asked…").
_ROLE = (
    r"president|prime minister|premier|chancellor|minister|chairman|chairwoman|chair|governor|mayor|king|queen|"
    r"prince|emperor|leader|secretary(?:-general)?|ceo|chief executive|head|spokesman|spokeswoman|spokesperson|"
    r"commander|director|ambassador|speaker|pope|general"
)
_ROLE_REF_RE = re.compile(rf"\b(?:the|its|his|her|their|country's|country’s)\s+(?:[a-z]+\s+)?({_ROLE})\b", re.IGNORECASE)
_NAME = r"[A-Z][\w’'-]+(?:\s+[A-Z][\w’'-]+){0,3}"
_WHICH_RE = re.compile(r"\b(?:which|what)\s+([\w’'-]+(?:\s+[\w’'-]+){0,2})", re.IGNORECASE)
_DEMONYM_RE = re.compile(r"(?:an|ese|ish|ic)$")
_NAME_RE = re.compile(rf"(?<![\w’'-])({_NAME}(?:\s+(?:&|and|of|de)\s+{_NAME})?)")
# Capitalised words that are not names: sentence openers, days, months.
_NOT_NAMES = STOPWORDS | frozenset("monday tuesday wednesday thursday friday saturday sunday january february march "
                                   "april may june july august september october november december i but".split())


RULES = ("next", "naming", "antecedent", "neighbour")
# With a short-answer model, a sentence cited beside the best (a rule's, or the second best by score) stays only if
# the model's best span in it scores (start + end logits) at least the best sentence's own span score minus this:
# the model must see an answer there too. Fitted on the tuning splits (the largest citation precision with answer
# accuracy within 0.005 of the rules unvetted; SQuAD 2.0 tuning 600 answerable + 300, RealTime QA June 16 with the
# answer in a gold article), first for the rules' sentences alone: unvetted 0.805 / 0.748 and 0.938 / 0.640
# (accuracy / citation precision), margin 0 or 1: 0.802 / 0.797 and 0.813 / 0.737, **2**: 0.802 / 0.792 and 0.938 /
# 0.762, 3: 0.802 / 0.786 and 0.938 / 0.762, 4: 0.805 / 0.781 and 0.938 / 0.696. Then the second best sentence,
# which joins within `second_margin` of the best, vetted as well (the rules' at 2): unvetted 0.802 / 0.792, margin
# 4: 0.802 / 0.799, 3: 0.802 / 0.805, **2** (or 1, 0): 0.798 / 0.808 on SQuAD; no June answer moved.
RULE_SPAN_MARGIN = 2.0


class ExtractiveAnswerer:
    """Composes the answer from a reader's Reading: its best sentence, each cited as an exact span, or a refusal
    when the reader's support is under `min_support`. A second sentence joins when it scores within
    `second_margin` of the best. Hand-written rules, each switchable (`rules`):
    - next: the sentence right after the best joins it within `next_margin` (an article often names its subject
      in one sentence and gives the fact asked for in the next);
    - naming: a "who" answer that names a role ("the President of Kazakhstan") also cites the sentence naming its
      holder;
    - antecedent: a "which X" answer that names X only by description ("the company") also cites the sentence
      before that names it;
    - neighbour: a name asked for and missing from the best sentence is taken from the sentence beside it.
    With a short-answer model (`Reading.spans`) a sentence cited beside the best (the second best, or a rule's) stays
    only when the model's best span in it scores within `rule_span_margin` of the best sentence's, and the short
    answer is its best span among the cited sentences; without one (RAG_SHORT_ANSWERS=patterns) the sentences all
    stay and the rules' names are the short answer."""

    def __init__(self, min_support: float = 0.35, max_sentences: int = 2, second_margin: float = 0.06,
                 next_margin: float = 0.2, rules: Sequence[str] = RULES,
                 rule_span_margin: float = RULE_SPAN_MARGIN) -> None:
        unknown = set(rules) - set(RULES)
        if unknown:
            raise ValueError(f"unknown answer rules {sorted(unknown)}; known: {', '.join(RULES)}")
        self.min_support = min_support
        self.max_sentences = max_sentences
        self.second_margin = second_margin
        self.next_margin = next_margin
        self.rules = frozenset(rules)
        self.rule_span_margin = rule_span_margin

    def run(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
            reading: Reading) -> Answer:
        return self.compose(question, passages, articles, reading)[0]

    def stream(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
               reading: Reading) -> Iterator[AnswerPiece | Answer]:
        """The answer's pieces (each cited sentence, or the refusal), then the Answer."""
        answer, pieces = self.compose(question, passages, articles, reading)
        yield from pieces
        yield answer

    def compose(self, question: str, passages: Sequence[Passage], articles: Mapping[str, Article],
                reading: Reading) -> tuple[Answer, list[AnswerPiece]]:
        """The Answer and the pieces its text is made of."""
        ranked = reading.sentences
        support = reading.support
        if not ranked or support < self.min_support:
            return (Answer(question=question, text=REFUSAL, abstained=True, passages=tuple(passages), support=support),
                    [AnswerPiece(REFUSAL)])
        best = ranked[0]
        chosen = [best]
        for cand in ranked[1 : self.max_sentences]:
            if cand.score >= best.score - self.second_margin and cand.text != best.text:
                chosen.append(cand)
        if len(chosen) < self.max_sentences and "next" in self.rules:
            following = next((c for c in ranked[1:] if c.doc_id == best.doc_id
                              and 0 <= c.start_char - best.end_char <= 3), None)
            if following is not None and following.score >= best.score - self.next_margin:
                chosen.append(following)
        chosen.sort(key=lambda c: (c.doc_id != best.doc_id, c.doc_id, c.start_char))
        short = reading.short_answer
        neighbour: Candidate | None = None
        named: tuple[Candidate, str] | None = None
        if answer_type(question) == "person":
            named = _naming_sentence(best, articles[best.doc_id]) if "naming" in self.rules else None
            if named is not None:
                cand, short = named
                if all(c.start_char != cand.start_char or c.doc_id != cand.doc_id for c in chosen):
                    chosen = [best, cand]
            elif "neighbour" in self.rules:
                # "Who headed the Security Council after Nazarbayev left?": a person the question does not name
                neighbour = _naming_neighbour(question, best, articles[best.doc_id], ranked, partial=True)
        else:
            antecedent = (_antecedent_sentence(question, best, articles[best.doc_id])
                          if "antecedent" in self.rules else None)
            if antecedent is not None:
                cand, name = antecedent
                short = name or short
                chosen = [cand, best]  # in reading order: it comes just before
            elif "neighbour" in self.rules and (_asked_kind(question) or answer_type(question) == "place"):
                neighbour = _naming_neighbour(question, best, articles[best.doc_id], ranked)
        if neighbour is not None:
            chosen = sorted([best, neighbour], key=lambda c: c.start_char)
        if reading.spans is not None and len(chosen) > 1:
            # With a short-answer model, a sentence beside the best (the second best, or a rule's) stays only where
            # the model sees an answer in it (RULE_SPAN_MARGIN), and the short answer is its best span among the
            # sentences cited, not the name a rule found: SQuAD 2.0 tuning (600 answerable) short-answer F1 over all
            # 0.662 -> 0.670 (the antecedent and naming rules' names were wrong in 6 answers the model got right; one
            # answer lost), RealTime QA June (20) 0.646 -> 0.680 (one more right). Without a model the rules' names
            # stay.
            spans = reading.spans(chosen)
            own = next(score for c, (_, score) in zip(chosen, spans, strict=True) if c is best)
            kept = [(c, (text, score)) for c, (text, score) in zip(chosen, spans, strict=True)
                    if c is best or (text and score >= own - self.rule_span_margin)]
            chosen = [c for c, _ in kept]
            found = [(score, text, c) for c, (text, score) in kept if text]
            if found:
                _, short, source = max(found, key=lambda f: f[0])
                if named is not None and source is best:
                    # "Who requested CSTO troops?": the best sentence names a role ("The President of Kazakhstan
                    # asked..."), and the naming rule cites the sentence naming its holder: the answer is the
                    # holder, the model's span in that sentence, not its span in the best one (the role itself, or
                    # another part of the sentence: "Singapore" for "Who fled Sri Lanka?").
                    short = next((text for _, text, c in found if c is named[0]), short)
        citations: list[Citation] = []
        pieces: list[AnswerPiece] = []
        for number, cand in enumerate(chosen, start=1):
            also_in = next((p.duplicates for p in passages
                            if p.doc_id == cand.doc_id and p.start_char <= cand.start_char < p.end_char), ())
            citations.append(make_citation(number, articles[cand.doc_id], cand.start_char, cand.end_char, also_in))
            pieces.append(AnswerPiece(f"{' ' if pieces else ''}{cand.text} [{number}]", (number,)))
        return (Answer(question=question, text="".join(p.text for p in pieces), abstained=False,
                       citations=tuple(citations), passages=tuple(passages), short_answer=short, support=support),
                pieces)


def _antecedent_sentence(question: str, best: Candidate, article: Article) -> tuple[Candidate, str] | None:
    """When a "which/what X" question is answered by a sentence that names X only by description ("Netflix said
    *the wildly popular South Korean show* is green-lit", "*The company* is scaling back its AC"), the sentence
    just before it that names something the question does not (its antecedent), and that name ("" when unsure).

    Looked for in the two sentences before, nearest first; the farther one must share a word with the question,
    so an unrelated name is not taken for the antecedent."""
    head = _asked_kind(question)
    if not head:
        return None
    asked = {t.lower() for t in tokens(question)}
    described = re.search(rf"\b(?:the|this|that|these|those|its|their|a|an)\s+((?:[\w’'-]+\s+){{0,4}}?"
                          rf"{re.escape(head)}(?:e?s)?\b(?:\W+[\w’'-]+){{0,4}})", best.text, re.IGNORECASE)
    # Named already ("the Ukraine 24 TV channel", "the troops of the Russian Federation"): nothing to look for.
    # A nationality describes, it does not name ("the wildly popular South Korean show").
    if not described:
        return None
    named = _answer_names(question, described.group(1), asked, article.text)
    if [n for n in named if head.lower() in PLACE_KINDS or not _DEMONYM_RE.search(n)]:
        return None
    wanted = set(content_stems(question))
    spans = sentence_spans(article.text, 0, best.start_char)
    for back, (start, end) in enumerate(list(reversed(spans))[:2]):
        text = article.text[start:end]
        if not text.strip() or (back and not wanted & {stem(t) for t in tokens(text)}):
            continue
        names = _answer_names(question, text, asked, article.text)
        if names:
            return Candidate(best.doc_id, start, end, text, best.rank), names[0] if len(names) == 1 else ""
    return None


def _naming_neighbour(question: str, best: Candidate, article: Article, ranked: Sequence[Candidate],
                      partial: bool = False) -> Candidate | None:
    """When a question asks for a name ("which show", "where") and the best sentence holds none the question
    does not, the sentence just before or after it that does (the better scored of the two): the answer is
    usually next to the sentence that matches the question best (two sentences away, when it shares a word with
    the question and the nearer ones name nothing). `partial`: a name sharing a word with the
    question is the question's ("Nursultan Nazarbayev" for "after Nazarbayev left"), as fits "who" questions."""
    asked = {t.lower() for t in tokens(question)}
    if _answer_names(question, best.text, asked, article.text, partial):
        return None
    spans = sentence_spans(article.text)
    at = next((i for i, (start, _) in enumerate(spans) if start == best.start_char), None)
    if at is None:
        return None
    scores = {(c.doc_id, c.start_char): c.score for c in ranked}
    wanted = set(content_stems(question))
    for distance in (1, 2):  # two sentences away only when the nearer ones name nothing, and on the subject
        options = []
        for start, end in (spans[i] for i in (at - distance, at + distance) if 0 <= i < len(spans)):
            text = article.text[start:end]
            if distance > 1 and not wanted & {stem(t) for t in tokens(text)}:
                continue
            if _answer_names(question, text, asked, article.text, partial) and not is_question(text):
                options.append(Candidate(best.doc_id, start, end, text, best.rank,
                                         scores.get((best.doc_id, start), -9.0)))
        if options:
            return max(options, key=lambda c: c.score)
    return None


def _asked_kind(question: str) -> str:
    """The noun naming what a "which/what" question asks for: "Which wildly popular show was…" -> "show",
    "What country announced…" -> "country"; "" for "What should…" or no such phrase.

    >>> [_asked_kind(q) for q in ("Which wildly popular show was green-lit?", "What country announced it?",
    ...                           "Which countries sent troops?", "What should Ukraine learn?",
    ...                           "An eruption in which country recently prompted a Level 5 alert?")]
    ['show', 'country', 'countries', '', 'country']
    """
    m = _WHICH_RE.search(question)
    if not m:
        return ""
    words: list[str] = []
    for word in m.group(1).split():  # up to the verb: a stopword, a past form, an adverb after the noun
        w = word.lower()
        if w in STOPWORDS or w in PAST_FORMS or (len(w) > 4 and w.endswith("ed")) or (words and w.endswith("ly")):
            break
        words.append(word)
    return words[-1] if words else ""


def _answer_names(question: str, text: str, asked: set[str], article_text: str, partial: bool = False) -> list[str]:
    """The names in `text` that could answer the question: for "which country" or "which state" the countries or
    US states it names and the question does not (rag.reading.places: the sentence matching such a question best often
    names only an agency or a person); otherwise any name the question does not contain."""
    head = _asked_kind(question).lower()
    if head in PLACE_KINDS:
        return [p for p in places(text, head) if not {w.lower() for w in tokens(p)} <= asked]
    return _new_names(text, asked, article_text, partial)


def _new_names(text: str, asked: set[str], article_text: str, partial: bool = False) -> list[str]:
    """The names in `text` that the question does not contain (`partial`: none of whose words it contains). A
    single capitalised word opening the text is a name only if the article never writes it in lower case
    ("Netflix", not "Evolution")."""
    names = []
    for m in _NAME_RE.finditer(text):
        name = _strip_openers(m.group(1))
        words = {w.lower() for w in tokens(name)}
        if not name or words <= asked or (partial and (words - STOPWORDS) & asked):
            continue
        if name == m.group(1) and " " not in name and not text[: m.start()].strip(" “\"'‘(") \
                and re.search(rf"\b{re.escape(name.lower())}\b", article_text):
            continue
        names.append(name)
    return names


def _strip_openers(name: str) -> str:
    """'The Netflix' -> 'Netflix', 'But' -> '': capitalised words that only open a sentence or name a day."""
    words = name.split()
    while words and words[0].lower().strip("’'") in _NOT_NAMES:
        words = words[1:]
    return " ".join(words)


def _naming_sentence(best: Candidate, article: Article) -> tuple[Candidate, str] | None:
    """When `best` refers to someone by role ("the President of Kazakhstan"), the article's sentence
    that gives that role holder's name ("President Kassym-Zhomart Tokayev"), and the name."""
    ref = _ROLE_REF_RE.search(best.text)
    if not ref or re.match(rf"\s+{_NAME}", best.text[ref.end() :]):
        return None  # no role, or the role is followed by its holder's name already
    role = ref.group(1)
    patterns = [
        re.compile(rf"\b(?i:{role})\s+({_NAME})"),  # President Kassym-Zhomart Tokayev
        re.compile(rf"({_NAME}),\s+(?i:(?:the\s+)?(?:\w+\s+)?{role})\b"),  # Tokayev, the incumbent president
    ]
    spans = sentence_spans(article.text)
    # Prefer the naming sentence closest before the cited one, then after it.
    ordered = sorted(spans, key=lambda s: (s[0] > best.start_char, abs(s[0] - best.start_char)))
    for start, end in ordered:
        if start == best.start_char:
            continue
        text = article.text[start:end]
        for pattern in patterns:
            m = pattern.search(text)
            if m and m.group(1)[:1].isupper():
                return Candidate(best.doc_id, start, end, text, best.rank), m.group(1)
    return None

