"""The knowledge base: articles written in Markdown, rendered safely, and found by ranked full-text search.

Rendering: markdown-it-py (CommonMark) with raw HTML off, so a ``<script>`` in a body is shown as text, and links
only to http(s), mailto, in-page anchors and paths of this site (markdown-it's own check already refuses
``javascript:``, ``vbscript:``, ``file:`` and non-image ``data:``); links get ``rel="nofollow noopener"``.

Search (PostgreSQL, migration 0030): ``websearch_to_tsquery('english', q)`` against a stored tsvector that weighs
the title (A) above the body (B), so "configuring" finds "configure" and a title hit outranks a body hit
(``ts_rank``, title hits first); a word no title holds is looked up among the titles' words by trigram distance
(pg_trgm, table ``kb_words``) and the word meant is searched for as well, so "pasword" still finds "password".
Only a bounded set of candidates is ranked (:data:`CANDIDATES` title hits and as many others), so a word that is
in every article costs what a rare one does; past that many title hits, which of them come first is not
ranked. Snippets come from ``ts_headline`` with private-use characters as markers: the text is HTML-escaped
first and only then are the markers turned into ``<mark>``, so nothing in an article's body becomes markup.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markupsafe import Markup

from leadline_crm.service import queries

START, STOP = "\ue000", "\ue001"
HEADLINE_OPTIONS = (
    f'StartSel={START}, StopSel={STOP}, MaxWords=35, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "'
)
SAFE_LINK = re.compile(r"^(https?:|mailto:|#|/(?!/))", re.IGNORECASE)
LEXEME = re.compile(r"^[a-z0-9]{2,40}$")
WORD = re.compile(r"[^\W\d_]{3,40}")  # a word as kb_words holds them (letters only)
#: How many title hits and how many other hits a search ranks at most (migration 0031's note).
CANDIDATES = 200
Q_MAX = 200


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    original = md.validateLink

    def validate(url: str) -> bool:
        return bool(original(url)) and bool(SAFE_LINK.match(url.strip()))

    md.validateLink = validate  # type: ignore[method-assign]

    def link_open(renderer: RendererHTML, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


MARKDOWN = _markdown()


def render(body: str) -> Markup:
    """An article's Markdown as HTML that holds no script, no raw HTML and no unsafe link."""
    return Markup(MARKDOWN.render(body))  # noqa: S704 (markdown-it escapes all text; raw HTML is off)


def highlight(snippet: str) -> Markup:
    """A ts_headline snippet as HTML: escaped, then its markers as ``<mark>``."""
    text = html.escape(snippet.replace("\x00", ""))
    return Markup(text.replace(START, "<mark>").replace(STOP, "</mark>"))  # noqa: S704 (escaped above)


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: uuid.UUID
    title: str
    snippet: Markup
    rank: float
    public: bool
    tags: list[str]

    def doc(self) -> dict[str, Any]:
        return {"id": str(self.id), "title": self.title, "snippet": str(self.snippet), "rank": self.rank,
                "public": self.public, "tags": self.tags}  # fmt: skip


def clean_query(q: str) -> str:
    """The words as typed, trimmed, without NUL characters (PostgreSQL text cannot hold them)."""
    return q.replace("\x00", " ").strip()[:Q_MAX]


async def corrected(pool: asyncpg.Pool, words: str) -> str | None:
    """``words`` with each word no title holds replaced by the nearest title word, or None if none was."""
    typed = WORD.findall(words.lower())
    if not typed:
        return None
    meant = {r["word"]: r["meant"] for r in await pool.fetch(queries.CORRECTIONS, typed) if r["meant"]}
    if not meant:
        return None
    return WORD.sub(lambda m: meant.get(m.group(0).lower(), m.group(0)), words)


async def search(pool: asyncpg.Pool, q: str, limit: int = 20, public_only: bool = False) -> list[Hit]:
    """Articles matching ``q`` (or what it meant, for a misspelt word), best first (see the module's docstring)."""
    words = clean_query(q)
    if not words:
        return []
    rows = await pool.fetch(queries.KB_SEARCH, words, await corrected(pool, words), public_only, limit, CANDIDATES,
                            HEADLINE_OPTIONS)  # fmt: skip
    return [
        Hit(
            r["id"], r["title"], highlight(r["snippet"] or ""), float(r["rank"]), r["public"], list(r["tags"])
        )
        for r in rows
    ]


async def suggest(pool: asyncpg.Pool, text: str, limit: int = 5) -> list[asyncpg.Record]:
    """Articles sharing words with ``text`` (a case's subject and description): any of its stemmed words, best
    ranked first."""
    lexemes = await pool.fetchval(queries.LEXEMES, text.replace("\x00", " ")[:5000])
    words = [w for w in lexemes or [] if LEXEME.match(w)][:64]
    if not words:
        return []
    rows: list[asyncpg.Record] = await pool.fetch(queries.KB_SUGGEST, " | ".join(words), limit, CANDIDATES)
    return rows
