"""Raw text, Markdown or HTML -> a cleaned `Article`: boilerplate out, comments apart, credits to metadata.

Pure functions; the only library used is trafilatura, for HTML.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ingest.dates import article_date
from rag.errors import IngestError
from rag.types import Article

# Whole lines that are web furniture, never article text. Matched case-insensitively against a stripped line.
_BOILERPLATE_LINES = [
    r"leave a (reply|comment)( cancel reply)?",
    r"cancel reply",
    r"fill in your details below or click an icon to log in:?",
    r"(wordpress\.com|google|twitter|facebook|gravatar) (logo|photo|picture|account)",
    r"you are commenting using your .{1,40} account\..*",
    r"\(?\s*log ?out\s*/\s*change\s*\)?",
    r"connecting to %s",
    r"this site uses akismet to reduce spam\..*",
    r"liked by (\d+|one|two|three) (people|person|bloggers?|others?)",
    r"(be the first to )?like( this)?[.:]?",
    r"like loading\.*",
    r"loading\.*",
    r"reply( ↓)?",
    r"(share|share this|share this article|share on \w+|tweet|email|e-mail|print|more)[.:]?",
    r"(facebook|twitter|linkedin|whatsapp|reddit|telegram|pinterest|tumblr|pocket|x)",
    r"click to (share|print|email|e-mail) .{0,80}",
    r"notify me of (new|follow-up) (comments|posts) .{0,60}",
    r"(post|submit) comment",
    r"related( posts| articles| stories)?:?",
    r"(sign (in|up)|log ?in|subscribe( now)?|register|follow us)( to .{0,60})?[.!:]?",
    r"advertisement|sponsored( content)?",
    r"(read|see) (more|also)[.:]?",
    r"skip to (main )?content",
    r"(accept|reject|allow|manage) (all )?(cookies|cookie settings|preferences)",
    r".{0,200}\b(we use cookies|this (web)?site uses cookies|cookie (policy|settings|preferences))\b.{0,200}",
    r"(comments?|responses?|replies) \(\d+\)",
    # A link to another story under a label ("More:Breonna Taylor was briefly alive…", "READ: …", "ALSO READ: …"):
    # another article's headline, not this one's text, and often of another day.
    r"(read more|read|more|related|see also|also read|also|watch|listen|complete coverage|opinion)\s*:\s*\S.{0,250}",
    # The byline's furniture: contributors, and how to reach or follow the reporter (an address or a handle).
    r"contributing:\s*\S.{0,300}",
    r"(reach|contact|follow)\b.{0,200}@\w.{0,200}",
    r"follow .{1,80} on (twitter|facebook|instagram)\b.{0,120}",
]
_BOILERPLATE_RE = re.compile(r"^(?:" + "|".join(_BOILERPLATE_LINES) + r")$", re.IGNORECASE)
# A newsletter or subscription promo on a line of its own: a call to sign up or subscribe, and what to ("Get CNN
# Health's weekly newsletter Sign up here …", "Support local journalism. Subscribe to azcentral.com today.").
_PROMO_RE = re.compile(r"\b(?:sign(?:ing)? up|subscribe)\b.*?(?:\bnewsletters?\b|\binbox(?:es)?\b|\bhere\s*[.!)\]]*$|"
                       r"\.com\b)|\bnewsletters?\b.*?\b(?:sign(?:ing)? up|subscribe)\b", re.IGNORECASE)
_MAX_PROMO_CHARS = 300

# Lines that open the comment section: everything after is reader comments or furniture.
_COMMENTS_START_RE = re.compile(
    r"^(?:leave a (?:reply|comment)|(?:\d+|one|two|three) (?:comments?|responses?|replies|thoughts on .{1,200})"
    r"|comments?:?|responses?:?|reader comments:?|join the discussion)$",
    re.IGNORECASE,
)

# Credit lines: "(C)UNIAN 2022", "© 2021 Reuters", "Copyright Reuters 2020".
_CREDIT_RE = re.compile(
    r"^(?:\(c\)|©|copyright)\s*(?:(?P<year1>(?:19|20)\d{2})\s*)?(?P<source>[A-Za-z][\w.&' -]{0,60}?)"
    r"(?:[\s,]+(?P<year2>(?:19|20)\d{2}))?\s*\.?(?:\s*all rights reserved\.?)?$",
    re.IGNORECASE,
)

# Photo captions glued into the text, often twice: "…USSR.”The expert explained … / photo REUTERS".
_CAPTION_RE = re.compile(
    r"(?<=[.!?”\"’)])(?![”\"’)])[^.!?\n/]{0,300}?\s/\s(?i:photo|фото|image|video):?\s?"
    r"(?:[A-Z][A-Z.&-]+|[A-Z][a-z]+(?: [A-Z][a-z]+)?)(?=[A-Z][a-z]|\s|$)"
)
_CAPTION_AGENCY_RE = re.compile(r"/\s(?:photo|фото|image|video)\b", re.IGNORECASE)

# A photo gallery flattened into the text (CNN's pages): "Photos: <gallery title> <caption> Hide Caption 1 of 38
# Photos: <gallery title> <caption> Hide Caption 2 of 38 ...", in one paragraph or one a paragraph.
_GALLERY_MARK_RE = re.compile(r"\s*\bHide Caption \d+ of \d+\b")
_GALLERY_LABEL = "Photos: "

# CNN's video player flattened into the text: "JUST WATCHED <title> Replay More Videos ... MUST WATCH <title> 02:29".
_VIDEO_PLAYER_RE = re.compile(
    r"[ \t]*\bJUST WATCHED (?P<title>[^\n]{1,300}?) Replay More Videos (?:\.\.\.|…) MUST WATCH (?P=title) \d{1,2}:\d{2}\b[ \t]*")
# A list bullet glyph opening a line ("►The UK said …"): layout, not text.
_BULLET_RE = re.compile(r"^[►▶•▪■◆][ \t]*", re.MULTILINE)

# A photo credit left after a caption: "... on Tuesday. Matthew Brown/AP", "... Robyn Beck/AFP/Getty Images A man
# sits ...", "(Photo by Gado/Getty Images)": a name or an agency, then one or more "/" parts, the last an agency.
_AGENCIES = ("Getty Images|Reuters|AP|AFP|EPA|EPA-EFE|Shutterstock|Sipa|Sipa USA|Bloomberg|ZUMA Wire|ZUMA|NurPhoto|"
             "Polaris|Redux|Anadolu Agency|The New York Times|The Washington Post|USA TODAY|USA TODAY Sports|Imagn")
_NAME = r"[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){0,3}"
_PHOTO_CREDIT_RE = re.compile(
    rf"(?:(?<=[.!?”\"’)])\s+|^)(?:{_NAME})(?:/{_NAME}){{0,3}}/(?:{_AGENCIES})(?=\s|$)|\s*\(Photo by [^()\n]{{1,100}}\)",
    re.MULTILINE,
)

_COMMENT_ITEM_RE = re.compile(r"^\s*\d{1,4}\.\s+")
_SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r" +([.,;:!?])(?= |$)")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff]")

_MAX_TITLE_WORDS = 30


def normalise(text: str) -> str:
    """Unify newlines and spaces, drop control characters, strip lines, keep paragraph breaks.

    >>> normalise("a  b \\r\\n\\r\\n\\r\\nc .")
    'a b\\n\\nc.'
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL_RE.sub("", text)
    lines = [_SPACE_BEFORE_PUNCT_RE.sub(r"\1", _SPACES_RE.sub(" ", line)).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def is_boilerplate(line: str) -> bool:
    """Web furniture on a line of its own: a widget, a cookie banner, a newsletter promo, a labelled link to another
    story, a reporter's contact line.

    >>> is_boilerplate("Get CNN Health's weekly newsletter Sign up here to get The Results Are In every Tuesday.")
    True
    >>> is_boilerplate("Lopez confirmed their wedding in her newsletter Sunday."), is_boilerplate("Share this:")
    (False, True)
    >>> is_boilerplate("Voters can sign up here until Friday."), is_boilerplate("Users can subscribe to it today.")
    (False, False)
    >>> is_boilerplate("More:Breonna Taylor was briefly alive after police shot her"), is_boilerplate("OPINION: College sports has become a proxy war")
    (True, True)
    >>> is_boilerplate("More than 40,000 people filed for unemployment."), is_boilerplate("Read the report: it is long.")
    (False, False)
    >>> is_boilerplate("Reach Kirby Adams at kadams@courier-journal.com"), is_boilerplate("Contributing: Mike Snider")
    (True, True)
    >>> is_boilerplate("Contact tracing has slowed, officials said."), is_boilerplate("Follow the money, he said.")
    (False, False)
    >>> is_boilerplate("Contact with the crew was lost, the navy said on Twitter.")
    False
    >>> is_boilerplate("Follow AP Hockey Writer Stephen Whyno on Twitter at https://twitter.com/SWhyno")
    True
    """
    stripped = line.strip()
    if not stripped:
        return False
    return (len(stripped) <= 400 and bool(_BOILERPLATE_RE.match(stripped))) or (
        len(stripped) <= _MAX_PROMO_CHARS and bool(_PROMO_RE.search(stripped)))


def remove_captions(paragraph: str) -> str:
    """Drop "<caption> / photo AGENCY" runs glued to the text.

    >>> remove_captions("It ended.”The man / photo REUTERSThe man / photo REUTERS")
    'It ended.”'
    """
    if not _CAPTION_AGENCY_RE.search(paragraph):
        return paragraph
    previous = None
    while previous != paragraph:
        previous = paragraph
        paragraph = _CAPTION_RE.sub("", paragraph, count=1)
    # A paragraph that is nothing but a caption.
    if _CAPTION_AGENCY_RE.search(paragraph) and len(paragraph) < 300 and not re.search(r"[.!?]\s", paragraph):
        return ""
    return paragraph.strip()


def unroll_gallery(text: str) -> str:
    """A photo gallery flattened into the text -> its captions, a paragraph each, without the "Hide Caption k of n"
    marks and the "Photos:" labels. The gallery's title, which CNN repeats before every caption, stays: where it
    ends is not marked ("Best actor: ..." under "Oscars winners 2021").

    >>> unroll_gallery("It rained.\\n\\nPhotos: Floods A road buckles. Hide Caption 1 of 2 Photos: Floods Homes are "
    ...                "damaged. Hide Caption 2 of 2\\n\\nThe river rose.")
    'It rained.\\n\\nFloods A road buckles.\\n\\nFloods Homes are damaged.\\n\\nThe river rose.'
    """
    if not _GALLERY_MARK_RE.search(text):
        return text
    pieces = []
    for part in _GALLERY_MARK_RE.split(text):
        at = part.rfind(_GALLERY_LABEL)  # the caption runs from the last label before its mark
        if at < 0:
            pieces.append(part.strip())
        else:
            pieces += [part[:at].strip(), part[at + len(_GALLERY_LABEL):].strip()]
    return "\n\n".join(piece for piece in pieces if piece)


def remove_video_players(text: str) -> str:
    """Drop a video player's text (its title twice, "Replay More Videos", a running time) and list bullets' glyphs.

    >>> remove_video_players("It rained.\\nJUST WATCHED Heat dome bakes Southeast Replay More Videos ... MUST WATCH "
    ...                      "Heat dome bakes Southeast 02:19\\n\u25baThe river rose.")
    'It rained.\\n\\nThe river rose.'
    """
    return _BULLET_RE.sub("", _VIDEO_PLAYER_RE.sub("", text))


def remove_photo_credits(text: str) -> str:
    """Drop the photo credits captions leave in the text, after a sentence's end or alone on a line.

    >>> remove_photo_credits("Crews cleared the road on Tuesday. Matthew Brown/AP\\n\\nThe park closed. "
    ...                      "(Photo by Gado/Getty Images) Residents left. Robyn Beck/AFP/Getty Images A man sat.")
    'Crews cleared the road on Tuesday.\\n\\nThe park closed. Residents left. A man sat.'
    """
    return _PHOTO_CREDIT_RE.sub("", text)


def url_host(url: str) -> str:
    """The site a URL is on, as an article's source when nothing else names one ("" for no URL).

    >>> url_host("https://www.cnn.com/2022/07/08/asia/abe/index.html"), url_host("")
    ('cnn.com', '')
    """
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:  # a malformed URL ("http://[::1")
        return ""
    return host.removeprefix("www.")


def parse_credit(line: str) -> tuple[str, str] | None:
    """("UNIAN", "2022") for "(C)UNIAN 2022"; None when the line is not a credit line."""
    m = _CREDIT_RE.match(line.strip())
    if not m:
        return None
    return m.group("source").strip(" .,"), (m.group("year1") or m.group("year2") or "")


def _looks_like_title(line: str) -> bool:
    words = line.split()
    return 0 < len(words) <= _MAX_TITLE_WORDS and not line.endswith((".", ",", ";")) and not is_boilerplate(line)


def _split_comments(lines: list[str]) -> list[str]:
    comments: list[str] = []
    current: list[str] = []
    for line in lines:
        if not line.strip() or is_boilerplate(line) or _COMMENTS_START_RE.match(line.strip()):
            if current and not line.strip():
                continue
            if current:
                comments.append(" ".join(current))
                current = []
            continue
        if _COMMENT_ITEM_RE.match(line) and current:
            comments.append(" ".join(current))
            current = []
        current.append(_COMMENT_ITEM_RE.sub("", line).strip())
    if current:
        comments.append(" ".join(current))
    return [c for c in comments if c]


def clean_text(
    raw: str,
    *,
    doc_id: str,
    path: str = "",
    title: str = "",
    source: str = "",
    published: Any = "",
    url: str = "",
    authors: tuple[str, ...] = (),
    find_title: bool = True,
    page_date: Any = "",
) -> Article:
    """Plain text -> Article. The first short line becomes the title unless one is given.

    `published` is the record's own date (any form ingest.dates.parse_date reads), `page_date` what the page's
    markup says; the article's date is the first trusted one of those, the URL's and a dateline's. The source is
    `source`, else a credit line's ("(C)UNIAN 2022"), else the URL's site ("cnn.com")."""
    text = normalise(raw)
    lines = text.split("\n")
    if find_title and not title:
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is not None and _looks_like_title(lines[first]) and len(lines) > first + 1:
            title = lines[first].strip()
            lines = lines[first + 1 :]
    elif title:
        # Drop a leading line that repeats the given title.
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is not None and lines[first].strip().lower() == title.strip().lower():
            lines = lines[first + 1 :]

    body: list[str] = []
    tail: list[str] = []
    in_tail = False
    credit_year = ""
    for line in lines:
        stripped = line.strip()
        if not in_tail:
            credit = parse_credit(stripped) if stripped else None
            if credit is not None:
                source = source or credit[0]
                credit_year = credit_year or credit[1]
                in_tail = True
                continue
            if _COMMENTS_START_RE.match(stripped):
                in_tail = True
                continue
            body.append(line)
        else:
            tail.append(line)

    paragraphs: list[str] = []
    previous = ""
    for line in body:
        if is_boilerplate(line):
            continue
        line = remove_captions(line) if line else line
        if line and line == previous:  # duplicated caption or widget line
            continue
        paragraphs.append(line)
        previous = line
    cleaned = normalise(remove_photo_credits(unroll_gallery(remove_video_players("\n".join(paragraphs)))))
    if not cleaned.strip():
        raise IngestError("no article text left after cleaning")
    dated = article_date(published, url, page_date, text, credit_year)
    return Article(
        id=doc_id,
        text=cleaned,
        title=title.strip(),
        source=source.strip() or url_host(url),
        published=dated.published,
        published_source=dated.source,
        url=url.strip(),
        authors=tuple(a.strip() for a in authors if a and a.strip()),
        comments=tuple(_split_comments(tail)),
        path=path,
    )


_FRONT_MATTER_RE = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_MD_IMAGE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS_RE = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_MD_HEADING_RE = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_MD_LIST_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_MD_QUOTE_RE = re.compile(r"^\s*>\s?")
_MD_RULE_RE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")


def clean_markdown(raw: str, *, doc_id: str, path: str = "") -> Article:
    """Markdown -> Article: front matter to metadata, first heading to title, markup to plain text."""
    raw = raw.replace("\r\n", "\n")
    meta: dict[str, str] = {}
    m = _FRONT_MATTER_RE.match(raw)
    if m:
        for line in m.group(1).split("\n"):
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("\"'")
        raw = raw[m.end() :]
    title = meta.get("title", "")
    out: list[str] = []
    in_fence = False
    for line in raw.split("\n"):
        if line.strip().startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence:
            if _MD_RULE_RE.match(line):
                out.append("")
                continue
            heading = _MD_HEADING_RE.match(line)
            if heading:
                if not title:
                    title = heading.group(1)
                    continue
                out.extend(["", heading.group(1), ""])
                continue
            line = _MD_QUOTE_RE.sub("", line)
            line = _MD_LIST_RE.sub("", line)
            line = _MD_IMAGE_RE.sub("", line)
            line = _MD_LINK_RE.sub(r"\1", line)
            line = _MD_EMPHASIS_RE.sub(r"\2", line)
            line = _HTML_TAG_RE.sub("", line)
        out.append(line)
    return clean_text(
        "\n".join(out),
        doc_id=doc_id,
        path=path,
        title=title,
        source=meta.get("source", ""),
        published=meta.get("date", meta.get("published", "")),
        url=meta.get("url", ""),
        authors=tuple(a for a in re.split(r",|;| and ", meta.get("author", meta.get("authors", ""))) if a),
        find_title=not title,
    )


def _site_name(found: str, url: str, fallback: str) -> str:
    """The page's site name, unless it is only the URL's host (trafilatura's guess, with the port it names: not
    `url_host`) and a feed named it."""
    from urllib.parse import urlsplit

    host = urlsplit(url).netloc.lower()
    if fallback and (not found or found.lower() in (host, host.removeprefix("www."))):
        return fallback
    return found


def clean_html(raw: str, *, doc_id: str, path: str = "", url: str = "",
               fallback: Mapping[str, Any] | None = None) -> Article:
    """HTML -> Article with trafilatura: main text, title, date, site name; comments kept apart. `fallback`
    (title, published, authors, source, url: what a feed entry or an archive record says) fills what the page
    lacks."""
    fallback = fallback or {}
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(
            raw,
            url=url or None,
            include_comments=True,
            include_tables=True,
            with_metadata=True,
            favor_precision=False,
        )
    except Exception as exc:  # trafilatura raises a variety of lxml errors on broken markup
        raise IngestError(f"HTML could not be parsed: {exc}") from exc
    if doc is None:
        raise IngestError("no article text found in the HTML")
    data: Mapping[str, Any] = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = data.get("text") or ""
    if not text.strip():
        raise IngestError("no article text found in the HTML")
    author = data.get("author") or ""
    authors = tuple(a for a in re.split(r";|,", author) if a.strip()) or tuple(fallback.get("authors") or ())
    title = data.get("title") or str(fallback.get("title") or "")
    article = clean_text(
        text,
        doc_id=doc_id,
        path=path,
        title=title,
        source=_site_name(data.get("sitename") or "", data.get("url") or url, str(fallback.get("source") or "")),
        page_date=data.get("date") or fallback.get("published") or "",
        url=data.get("url") or url or str(fallback.get("url") or ""),
        authors=authors,
        find_title=not title,
    )
    extra_comments = tuple(c for c in (data.get("comments") or "").split("\n") if c.strip())
    if extra_comments:
        article = Article(**{**article.__dict__, "comments": article.comments + extra_comments})
    return article
