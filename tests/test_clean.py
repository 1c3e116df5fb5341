"""Cleaning: only the article becomes answerable text; comments and web furniture are kept out."""

from __future__ import annotations

import pytest

from ingest.chunk import Chunker
from ingest.clean import clean_html, clean_markdown, clean_text, parse_credit
from rag.errors import IngestError

BOILERPLATE = [
    "Leave a Reply", "Fill in your details", "WordPress.com", "Log Out", "Change )", "Google photo",
    "Twitter picture", "Facebook photo", "Connecting to %s", "Akismet", "Liked by", "/ photo REUTERS",
]
COMMENT_PHRASES = ["mafia land", "handful of killers", "rodent", "army group"]


@pytest.fixture(scope="module")
def seed_article(seed_text: str):
    return clean_text(seed_text, doc_id="seed")


def test_seed_title_source_and_year_are_metadata(seed_article) -> None:
    assert seed_article.title.startswith("“Special operation of the Russians”")
    assert seed_article.source == "UNIAN"
    assert seed_article.published == "2022"
    assert "(C)UNIAN" not in seed_article.text
    assert seed_article.title not in seed_article.text


def test_seed_text_has_no_boilerplate_or_comment(seed_article) -> None:
    for phrase in BOILERPLATE + COMMENT_PHRASES:
        assert phrase not in seed_article.text, phrase


def test_every_seed_chunk_is_free_of_boilerplate_and_comments(seed_article) -> None:
    chunks = Chunker(max_tokens=60, overlap_sentences=1).run(seed_article)
    assert len(chunks) > 5
    for chunk in chunks:
        for phrase in BOILERPLATE + COMMENT_PHRASES:
            assert phrase not in chunk.text


def test_seed_reader_comment_is_kept_apart(seed_article) -> None:
    assert len(seed_article.comments) == 1
    assert seed_article.comments[0].startswith("Kazakhstan is not a small country.")
    assert "Liked by" not in seed_article.comments[0]


def test_duplicated_photo_caption_is_removed_and_lede_kept(seed_article) -> None:
    assert "The expert explained the benefits of the Russian Federation" not in seed_article.text
    assert seed_article.text.startswith(
        "According to Osipenko, the Russian authorities used the situation inside Kazakhstan to return it to "
        "the “fold of the USSR.”\n"
    )
    assert "Kassym-Zhomart Tokayev" in seed_article.text  # double space inside the name folded


@pytest.mark.parametrize(
    ("line", "expected"),
    [("(C)UNIAN 2022", ("UNIAN", "2022")), ("© 2021 Reuters", ("Reuters", "2021")),
     ("Copyright Associated Press", ("Associated Press", "")), ("The end.", None)],
)
def test_credit_lines(line: str, expected) -> None:
    assert parse_credit(line) == expected


def test_cookie_banner_and_share_widgets_are_dropped() -> None:
    raw = ("Storm hits coast\n\nWe use cookies to improve your experience. Accept all cookies\n"
           "The storm reached the coast on Monday.\nShare this:\nTwitter\nFacebook\nLike Loading...\n"
           "Officials said 3 people were hurt.\n")
    article = clean_text(raw, doc_id="d")
    assert article.title == "Storm hits coast"
    assert article.text == "The storm reached the coast on Monday.\nOfficials said 3 people were hurt."


def test_a_flattened_photo_gallery_becomes_its_captions() -> None:
    """CNN's pages carry their galleries as text, in one paragraph or one a paragraph: each caption becomes a
    paragraph of its own (a sentence a citation can quote), without the "Hide Caption k of n" marks and labels."""
    gallery = " ".join(f"Photos: {caption} Hide Caption {k} of 3" for k, caption in enumerate(
        ("Abe speaks moments before being shot in Nara on July 8.", "Abe lies on the ground, center.",
         "Police detain a man at the scene."), start=1))
    for layout in (gallery, gallery.replace(" of 3 ", " of 3\n")):
        article = clean_text(f"Abe shot\n\nAbe was shot while speaking.\n\n{layout}\n\nHe died later that day.\n",
                             doc_id="d")
        assert article.text == ("Abe was shot while speaking.\n\nAbe speaks moments before being shot in Nara on "
                                "July 8.\n\nAbe lies on the ground, center.\n\nPolice detain a man at the scene.\n\n"
                                "He died later that day."), article.text


def test_photo_credits_left_by_captions_are_dropped() -> None:
    """A credit after a caption's end ("Matthew Brown/AP") or glued before the next caption, and "(Photo by ...)",
    go; a slash in the prose and an agency named in a sentence stay."""
    raw = ("Floods\n\nA creek flooded Red Lodge on Tuesday. Matthew Brown/AP\n\nRoads closed. Robyn Beck/AFP/Getty "
           "Images A man sat on a bench. (Photo by Gado/Getty Images)\n\nThe and/or clause stays, as AP reported.\n")
    assert clean_text(raw, doc_id="d").text == ("A creek flooded Red Lodge on Tuesday.\n\nRoads closed. A man sat on a "
                                               "bench.\n\nThe and/or clause stays, as AP reported.")


def test_the_source_falls_back_to_the_urls_site() -> None:
    """A record that names no source (RealTime QA's pages) takes its URL's site, so sources can be listed and
    filtered; a given source or a credit line wins."""
    url = "https://www.cnn.com/2022/07/08/asia/abe/index.html"
    assert clean_text("The mayor spoke.\n", doc_id="d", url=url).source == "cnn.com"
    assert clean_text("The mayor spoke.\n", doc_id="d", url=url, source="CNN").source == "CNN"
    assert clean_text("The mayor spoke.\n(C)UNIAN 2022\n", doc_id="d", url=url).source == "UNIAN"
    assert clean_text("The mayor spoke.\n", doc_id="d").source == ""


def test_newsletter_promos_on_lines_of_their_own_are_dropped() -> None:
    raw = ("Heat wave\n\nTemperatures reached 40C on Tuesday.\nGet CNN Health's weekly newsletter Sign up here to get "
           "The Results Are In every Tuesday.\nSPORTS NEWSLETTER:Sign up now to get daily updates sent to your inbox\n"
           "Residents can sign up for cooling centres until Friday, officials said.\n")
    assert clean_text(raw, doc_id="d").text == ("Temperatures reached 40C on Tuesday.\nResidents can sign up for cooling "
                                               "centres until Friday, officials said.")


def test_links_to_other_stories_and_reporters_contact_lines_are_dropped() -> None:
    """USA TODAY network pages put other stories' headlines under a label between paragraphs, and end with the
    reporter's contact line: neither is this article's text, and a headline of another day must not be cited."""
    raw = ("Flood relief\n\nThe governor asked for federal aid on Monday.\nMore:Beshear announces investigation into "
           "LMPD shooting\nALSO READ: How Each State Got Its Shape\nMore than 40 counties were affected, he said.\n"
           "Contributing: The Associated Press\nReach Kirby Adams at kadams@courier-journal.com\n")
    assert clean_text(raw, doc_id="d").text == ("The governor asked for federal aid on Monday.\nMore than 40 counties "
                                               "were affected, he said.")


def test_a_flattened_video_player_and_bullet_glyphs_are_dropped() -> None:
    """CNN pages carry their video player's text ("JUST WATCHED <title> Replay More Videos ... MUST WATCH <title>
    02:29"), which a quote must never be; a list's "►" glyphs are layout, and its items stay."""
    raw = ("Griner in court\n\nGriner pleaded guilty on Thursday.\nJUST WATCHED Hear Brittney Griner plead guilty "
           "Replay More Videos ... MUST WATCH Hear Brittney Griner plead guilty 02:29\n►The UK said Johnson was in Kyiv."
           "\n► Prices rose.\nThe hearing resumes next week.\n")
    assert clean_text(raw, doc_id="d").text == ("Griner pleaded guilty on Thursday.\n\nThe UK said Johnson was in "
                                               "Kyiv.\nPrices rose.\nThe hearing resumes next week.")


def test_html_uses_trafilatura_and_keeps_comments_apart() -> None:
    html = """<html><head><title>Dam opens | Daily News</title><meta property="og:site_name" content="Daily News">
    <meta name="date" content="2022-03-04"></head><body><nav>Home | World | Sport</nav>
    <article><h1>Dam opens</h1><p>The new dam opened on Friday after ten years of construction work.</p>
    <p>It will supply power to 200,000 homes in the region, officials said on Friday.</p></article>
    <div class="comments"><h3>Comments</h3><p>Great news for everyone here!</p></div>
    <footer>Cookie policy. Subscribe now.</footer></body></html>"""
    article = clean_html(html, doc_id="h")
    assert "dam opened on Friday" in article.text
    assert "200,000 homes" in article.text
    assert "Home | World" not in article.text and "Subscribe" not in article.text
    assert "Great news" not in article.text
    assert article.title.startswith("Dam opens")
    assert article.published == "2022-03-04"


def test_markdown_front_matter_and_markup() -> None:
    md = ("---\ntitle: Bridge closed\nsource: City Post\ndate: 2023-05-01\n---\n# Bridge closed\n\n"
          "The **old bridge** was closed, [the mayor](http://x) said.\n\n- Repairs take two weeks.\n")
    article = clean_markdown(md, doc_id="m")
    assert (article.title, article.source, article.published) == ("Bridge closed", "City Post", "2023-05-01")
    assert article.text == "The old bridge was closed, the mayor said.\n\nRepairs take two weeks."


def test_text_that_is_only_boilerplate_is_an_error() -> None:
    with pytest.raises(IngestError):
        clean_text("Leave a Reply\nLog Out / Change )\n", doc_id="x")
