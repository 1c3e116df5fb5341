"""Word-level helpers for matching questions to sentences: tokens, stems, stopwords, answer types."""

from __future__ import annotations

import re
from functools import lru_cache

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can could did didn't do does doesn't doing don't down during each few for from further
    had has have having he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm
    i've if in into is isn't it it's its itself let's me more most my myself no nor not of off on once only or
    other ought our ours ourselves out over own same she she'd she'll she's should so some such than that that's
    the their theirs them themselves then there there's these they they'd they'll they're they've this those
    through to too under until up very was wasn't we we'd we'll we're we've were weren't what what's when when's
    where where's which while who who's whom why why's with would you you'd you'll you're you've your yours
    yourself yourselves also according said says say tell told give gave given name named called did does
    many much one ones get got kind type article articles text mentioned mention
    among amongst become became becomes date year month decade century amount percentage""".split()
)  # the last line: words that frame a question ("on what date", "which year", "who became") rather than name
#    what the answer sentence must contain

_TOKEN_RE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿĀ-žА-яЁё]+(?:[-'’][A-Za-zÀ-ÖØ-öø-ÿĀ-žА-яЁё]+)*|\d+(?:[.,]\d+)*")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve dozen dozens hundred hundreds thousand "
    "thousands million millions billion billions first second third half".split()
)
_MONTHS = "january february march april may june july august september october november december"
_DATE_RE = re.compile(
    rf"\b(?:(?:{_MONTHS.replace(' ', '|')}|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\b\.?"
    r"|(?:1[5-9]|20)\d{2}s?\b|\d{1,2}(?:st|nd|rd|th)\b|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
    r"|(?:yesterday|today|tomorrow|century|decade|since|until)\b)",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"\d|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"])")
_NAME_RE = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w’'-]+")


# Irregular past forms of verbs news questions ask with their base form ("When did the crisis begin?" against
# "the crisis began"): each maps to the stem of its base form. Forms that are also common other words
# (left, found, saw, lead, wound, lay, bore) are left out.
_IRREGULAR = {form: base for base, forms in {
    "arise": "arose arisen", "become": "became", "begin": "began begun", "bite": "bit bitten", "blow": "blew blown",
    "break": "broke broken", "bring": "brought", "build": "built", "buy": "bought", "catch": "caught",
    "choose": "chose chosen", "come": "came", "deal": "dealt", "draw": "drew drawn", "drive": "drove driven",
    "eat": "ate eaten", "fall": "fell fallen", "feel": "felt", "fight": "fought", "flee": "fled", "fly": "flew flown",
    "forget": "forgot forgotten", "freeze": "froze frozen", "get": "got gotten", "give": "gave given",
    "go": "went gone", "grow": "grew grown", "hang": "hung", "hear": "heard", "hide": "hid hidden",
    "hold": "held", "keep": "kept", "know": "knew known", "lose": "lost", "make": "made", "mean": "meant",
    "meet": "met", "pay": "paid", "ride": "rode ridden", "rise": "rose risen", "run": "ran", "say": "said",
    "seek": "sought", "sell": "sold", "send": "sent", "shake": "shook shaken", "shoot": "shot", "sing": "sang sung",
    "sink": "sank sunk", "sit": "sat", "sleep": "slept", "speak": "spoke spoken", "spend": "spent",
    "stand": "stood", "steal": "stole stolen", "strike": "struck stricken", "swear": "swore sworn",
    "take": "took taken", "teach": "taught", "tear": "tore torn", "tell": "told", "think": "thought",
    "throw": "threw thrown", "understand": "understood", "wake": "woke woken", "wear": "wore worn",
    "win": "won", "withdraw": "withdrew withdrawn", "write": "wrote written", "overthrow": "overthrew overthrown",
    "forbid": "forbade forbidden", "undertake": "undertook undertaken", "uphold": "upheld", "foresee": "foresaw foreseen",
}.items() for form in forms.split()}
PAST_FORMS = frozenset(_IRREGULAR)
# News words a reader's question and the article often swap ("the death toll among demonstrators" / "26
# protesters have been killed"): each group's words match one another, as the forms of one word do. Only words
# whose every common news sense is shared are grouped ("force" and "leader" are not).
_SYNONYM_GROUPS = """protest protests protester protesters demonstration demonstrations demonstrator demonstrators
rally rallies unrest riot riots rioter rioters | kill killed killing killings death deaths dead die died toll
fatality fatalities casualty casualties | wound wounded injure injured injury injuries | arrest arrested detain
detained detention | troop troops soldier soldiers | resign resigned resignation | price prices cost costs |
rise rose risen increase increased hike hikes surge surged soar soared | trigger triggered spark sparked |
request requested ask asked | help aid assistance | government cabinet | start started begin began |
buy bought purchase purchased | ban banned prohibit prohibited | election elections vote votes poll polls |
fire fires blaze blazes wildfire wildfires | car cars vehicle vehicles | company companies firm firms |
announce announced declare declared unveil unveiled | children child kids kid"""


def _suffix_stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if w in _IRREGULAR:
        w = _IRREGULAR[w]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            if suffix == "es" and w[-3] not in "sxz" and not w.endswith(("ches", "shes")):
                w = w[:-1]
            else:
                w = w[: -len(suffix)]
            break
    # A silent final e: 'announce' and 'announc(ed)' meet.
    return w[:-1] if len(w) > 4 and w.endswith("e") else w


# Each grouped word's stem -> its group's first stem.
_SYNONYMS = {s: group[0] for group in ([_suffix_stem(w) for w in g.split()] for g in _SYNONYM_GROUPS.split("|"))
             for s in group}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'killed'/'kill', 'protesters'/'protester', 'announced'/'announce';
    then a news synonym's group ('death' -> 'kill').

    >>> [stem(w) for w in ["killed", "countries", "requested", "running", "announce", "announced"]]
    ['kill', 'country', 'request', 'runn', 'announc', 'announc']
    >>> stem("demonstrators") == stem("protesters") and stem("death") == stem("killed") == stem("casualties")
    True
    >>> stem("prices") == stem("price") == stem("priced")
    True
    >>> stem("began") == stem("begin") and stem("won") == stem("win") and stem("withdrew") == stem("withdraw")
    True
    """
    w = _suffix_stem(word)
    return _SYNONYMS.get(w, w)


def tokens(text: str) -> list[str]:
    return [m.group() for m in _TOKEN_RE.finditer(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning (stopwords out), in order."""
    return [stem(t) for t in tokens(text) if t.lower() not in STOPWORDS]


def answer_type(question: str) -> str:
    """'number', 'date', 'person', 'place' or '' from the question's wording."""
    q = question.lower().strip()
    if re.search(r"\bhow (many|much|long|old|far|big|large|tall|often)\b|\bwhat (number|percentage|amount|share|proportion)\b"
                 r"|\bhow many\b|\bwhat was the (toll|number|count|cost|price)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month|time|decade|century)\b|\bwhich (year|date|day|month|decade|century)\b"
                 r"|\bsince when\b|\bhow long ago\b", q):
        return "date"
    if re.search(r"^(who|whom|whose)\b|\b(who|whom|whose)\b", q):
        return "person"
    if re.search(r"\bwhere\b|\bwhat (city|country|place|region|town)\b|\bwhich (city|country|countries|place|region|town)\b", q):
        return "place"
    return ""


def has_type(sentence: str, kind: str, question: str = "") -> bool:
    """Does the sentence contain something of the asked type that the question itself does not?"""
    if not kind:
        return True
    asked = {t.lower() for t in tokens(question)}
    if kind == "number":
        return any(m for m in _NUMBER_RE.finditer(sentence) if m.group().lower() not in asked)
    if kind == "date":
        return any(m for m in _DATE_RE.finditer(sentence) if m.group().lower() not in asked)
    if kind in ("person", "place"):
        return any(m.group().lower() not in asked for m in _NAME_RE.finditer(sentence))
    return True


# Words of opposite or sibling meaning. A question with one and a sentence with the other in its place ("the
# party with the lowest quotient" / "the party with the highest quotient") are about different things.
_OPPOSITE_PAIRS = """highest lowest|high low|largest smallest|large small|big small|biggest smallest|most least|
more less|more fewer|first last|before after|early late|earliest latest|earlier later|northern southern|
north south|eastern western|east west|maximum minimum|increase decrease|increased decreased|rise fall|win lose|
won lost|winner loser|can cannot|able unable|possible impossible|include exclude|included excluded|inside outside|
internal external|positive negative|success failure|successful unsuccessful|strong weak|strongest weakest|
long short|longest shortest|old new|oldest newest|young old|youngest oldest|major minor|majority minority|
upper lower|top bottom|legal illegal|public private|male female|men women|father mother|husband wife|son daughter|
king queen|accept reject|accepted rejected|allowed banned|support oppose|supported opposed|open closed|
opened closed|start end|started ended|begin end|began ended|import export|imports exports|buy sell|bought sold|
gain loss|heavy light|hot cold|warm cool|fast slow|fastest slowest|encourage suppress|enhance inhibit|
activate inhibit|promote inhibit|same different|similar different|true false|always never|agree disagree|
approve reject|first second|second third|third fourth|fourth fifth|fifth sixth""".replace("\n", "").split("|")
OPPOSITES: dict[str, frozenset[str]] = {}
for _pair in _OPPOSITE_PAIRS:
    _a, _b = (stem(w) for w in _pair.split())
    OPPOSITES[_a] = OPPOSITES.get(_a, frozenset()) | {_b}
    OPPOSITES[_b] = OPPOSITES.get(_b, frozenset()) | {_a}
_YEAR_RE = re.compile(r"(?:1[5-9]|20)\d\d")


def swapped(question: str, sentence: str, context: str = "") -> bool:
    """Does the sentence put something else where the question has a word the sentence lacks: that word's
    opposite ("lowest" -> "highest", "southern" -> "northern", "fifth" -> "fourth"), or another year ("1967" ->
    "1968")? Words of the context (title, year, preceding sentence) count as present.

    >>> swapped("The party with the lowest quotient is awarded what?", "The party with the highest quotient wins.")
    True
    >>> swapped("What was formed when the governments merged in 1967?", "In 1968, the governments merged.")
    True
    >>> swapped("Which party is awarded the seat?", "The party with the highest quotient is awarded the seat.")
    False
    """
    asked = {stem(t) for t in tokens(question)}
    words = tokens(sentence)
    own = {stem(t) for t in words}
    present = own | {stem(t) for t in tokens(context)}
    if any(OPPOSITES.get(w, frozenset()) & (own - asked) for w in asked - present):
        return True
    years = {t for t in tokens(question) if _YEAR_RE.fullmatch(t)}
    others = {t for t in words if _YEAR_RE.fullmatch(t)} - years
    return bool(years - present) and bool(others)


def asking_part(question: str) -> str:
    """The sentence that asks, when a question sets the scene first ("Gas prices have been falling for more than
    50 days. What was the record high?"): the scene's words are the asker's wording of what the article may say
    otherwise, not conditions the answer must meet.

    >>> asking_part("Gas prices have been falling for 50 days. What was the record high price?")
    'What was the record high price?'
    >>> asking_part("Who requested CSTO troops?")
    'Who requested CSTO troops?'
    """
    parts = [p for p in _SENTENCE_END.split(question.strip()) if p.strip()]
    if len(parts) < 2:
        return question
    return next((p for p in reversed(parts) if is_question(p)), parts[-1])


def is_question(sentence: str) -> bool:
    """Does the sentence ask rather than tell ("Which show was green-lit?")?"""
    return sentence.rstrip(" \t\n\"'”’»)]").endswith("?")
