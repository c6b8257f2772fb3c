"""Import a Stack Exchange site dump folder (``Posts.xml``, ``Comments.xml``, ``Users.xml``).

Ids: a user keeps the dump's plain ``Id`` (``"7"``, ``"-1"``); a question or answer becomes
``"p<Id>"`` and a comment ``"c<Id>"`` (post and comment ids overlap in the dump). Files are
streamed with :func:`xml.etree.ElementTree.iterparse`, clearing each row once read, so memory is
O(number of posts kept) for the reply-target set, not O(dump size).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from tribes.errors import InputError
from tribes.events import (
    MAX_BIO_CHARS,
    MAX_NAME_CHARS,
    MAX_TAGS,
    MAX_TEXT_CHARS,
    EventError,
    parse_ts,
)
from tribes.importers._common import finish_stats

__all__ = ["COMMUNITY_USER", "DELETED_USER", "html_to_text", "iter_events", "parse_tags"]

#: Stack Exchange's bot account; imported with ``discoverable: false``.
COMMUNITY_USER = "-1"
#: Placeholder author of posts and comments whose account was deleted (no owner id and no
#: display name); with a display name the author is ``"deleted:<display name>"``.
DELETED_USER = "deleted"

_QUESTION, _ANSWER = "1", "2"
_ZONE = re.compile(r"(?:[zZ]|[+-]\d\d:?\d\d)$")
# Elements that do not separate words; every other tag becomes a space.
_INLINE = frozenset(
    [
        "a",
        "abbr",
        "b",
        "code",
        "del",
        "em",
        "i",
        "kbd",
        "s",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "u",
    ]
)


def iter_events(
    src: str | Path, *, active_only: bool = False, stats: dict | None = None
) -> Iterator[dict]:
    """Yield tribes events for the Stack Exchange dump folder ``src``.

    Output order guarantees that every ``reply_to`` target comes before its replies: users
    (``Users.xml``), then questions, then answers, then comments (all in file order).

    - Users → ``user`` (name = DisplayName, bio = AboutMe as plain text, ts = CreationDate).
      The Community bot (Id -1) gets ``discoverable: false``.
    - Questions (PostTypeId 1) → root ``post``: text = Title, a blank line, Body as plain text;
      ``tags`` from the Tags attribute (``<a><b>`` or ``|a|b|``).
    - Answers (PostTypeId 2) → ``post`` with ``reply_to`` = its question, ``tags: []``.
    - Comments → ``post`` with ``reply_to`` = the commented question or answer, ``tags: []``
      (explicitly empty, so code such as ``#include`` is not read as a hashtag).
    - Tag-wiki posts (PostTypeId 4/5) and other types are skipped; so are answers and comments
      whose target is not in the output (counted as ``orphans``).
    - A post or comment without an owner id (deleted account) is kept, attributed to
      ``"deleted:<OwnerDisplayName>"`` (or ``"deleted"`` without a display name); that
      placeholder user is emitted once, non-discoverable, before its first post.
    - Authors missing from ``Users.xml`` are created implicitly by the store (counted as
      ``unknown_authors``).
    - Timestamps carry no zone in the dumps and are read as UTC (``Z`` is appended).
    - HTML → plain text: tags dropped, entities unescaped, code kept as text, whitespace
      collapsed. Comment text is plain text already; its whitespace is collapsed.

    Parameters
    ----------
    src
        The dump folder. ``Posts.xml`` is required; ``Users.xml`` and ``Comments.xml`` are
        optional (file names are matched case-insensitively).
    active_only
        Emit ``user`` events only for users who own a post or a comment (404 of the 3,461
        accounts of quantumcomputing). Costs one extra pass over posts and comments.
    stats
        Optional dict that receives counters when the generator is exhausted. Not a CLI option.

    Raises
    ------
    InputError
        When the folder or ``Posts.xml`` is missing, the XML is malformed (naming file and
        line), or a row has an unusable id or date (naming the file and the row Id).
    """
    folder = Path(src)
    if not folder.is_dir():
        raise InputError("not a folder (expected a Stack Exchange dump folder)", path=str(src))
    posts = _find(folder, "Posts.xml", required=True)
    users = _find(folder, "Users.xml")
    comments = _find(folder, "Comments.xml")
    counts: Counter = Counter(
        users=0, questions=0, answers=0, comments=0, orphans=0, deleted_authors=0, unknown_authors=0
    )
    active: set[str] | None = None
    if active_only:
        active = {r["OwnerUserId"] for r in _rows(posts) if "OwnerUserId" in r}
        if comments:
            active.update(r["UserId"] for r in _rows(comments) if "UserId" in r)
    known: set[str] = set()
    if users:
        for row in _rows(users):
            uid = _need(row, "Id", users)
            known.add(uid)
            if active is not None and uid not in active:
                counts["users_inactive_skipped"] += 1
                continue
            event = {"type": "user", "id": uid, "ts": _ts(row, "CreationDate", users)}
            if row.get("DisplayName"):
                event["name"] = row["DisplayName"].strip()[:MAX_NAME_CHARS]
            bio = html_to_text(row.get("AboutMe", ""))
            if bio:
                event["bio"] = bio[:MAX_BIO_CHARS]
            if uid == COMMUNITY_USER:
                event["discoverable"] = False
            counts["users"] += 1
            yield event
    emitted: set[str] = set()  # post ids already yielded (reply targets)
    placeholders: set[str] = set()

    def author(row: dict, id_key: str, name_key: str, ts: str) -> tuple[str, dict | None]:
        """The author id of a row, and a placeholder user event to yield first (or None)."""
        uid = row.get(id_key, "").strip() or None
        if uid is not None:
            if users and uid not in known:
                counts["unknown_authors"] += 1
            return uid, None
        counts["deleted_authors"] += 1
        display = " ".join(row.get(name_key, "").split())[:MAX_NAME_CHARS]
        uid = f"{DELETED_USER}:{display}" if display else DELETED_USER
        if uid in placeholders:
            return uid, None
        placeholders.add(uid)
        return uid, {
            "type": "user",
            "id": uid,
            "ts": ts,
            "name": display or "(deleted account)",
            "discoverable": False,
        }

    for wanted in (_QUESTION, _ANSWER):
        for row in _rows(posts):
            kind = row.get("PostTypeId")
            if kind != wanted:
                if wanted == _QUESTION and kind not in (_QUESTION, _ANSWER):
                    counts[f"posts_type{kind}_skipped"] += 1
                continue
            post_id = "p" + _need(row, "Id", posts)
            ts = _ts(row, "CreationDate", posts)
            event = {"type": "post", "id": post_id, "author": "", "ts": ts, "text": ""}
            if kind == _QUESTION:
                title = " ".join(row.get("Title", "").split())
                body = html_to_text(row.get("Body", ""))
                event["text"] = f"{title}\n\n{body}".strip()[:MAX_TEXT_CHARS]
                event["tags"] = parse_tags(row.get("Tags", ""))[:MAX_TAGS]
            else:
                target = "p" + row.get("ParentId", "")
                if target not in emitted:
                    counts["orphans"] += 1
                    continue
                event["text"] = html_to_text(row.get("Body", ""))[:MAX_TEXT_CHARS]
                event["tags"] = []
                event["reply_to"] = target
            event["author"], placeholder = author(row, "OwnerUserId", "OwnerDisplayName", ts)
            if placeholder:
                yield placeholder
            emitted.add(post_id)
            counts["questions" if kind == _QUESTION else "answers"] += 1
            yield event
    if comments:
        for row in _rows(comments):
            target = "p" + row.get("PostId", "")
            if target not in emitted:
                counts["orphans"] += 1
                continue
            ts = _ts(row, "CreationDate", comments)
            by, placeholder = author(row, "UserId", "UserDisplayName", ts)
            if placeholder:
                yield placeholder
            text = " ".join(row.get("Text", "").split())[:MAX_TEXT_CHARS]
            counts["comments"] += 1
            yield {
                "type": "post",
                "id": "c" + _need(row, "Id", comments),
                "author": by,
                "ts": ts,
                "text": text,
                "tags": [],
                "reply_to": target,
            }
    finish_stats("stackexchange", counts, stats)


def parse_tags(value: str) -> list[str]:
    """``"<a><b>"`` (classic dumps) or ``"|a|b|"`` (2024+ dumps) → ``["a", "b"]``."""
    value = value.strip()
    parts = re.findall(r"<([^<>]+)>", value) if value.startswith("<") else value.split("|")
    return [p.strip() for p in parts if p.strip()]


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in _INLINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag not in _INLINE:
            self.parts.append(" ")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities unescaped, whitespace collapsed.

    Code (``<code>``, ``<pre>``) is kept as text; block elements separate words.

    >>> html_to_text("<p>a &amp; b</p><pre><code>x = 1\\n</code></pre>")
    'a & b x = 1'
    """
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.parts).split())


def _find(folder: Path, name: str, *, required: bool = False) -> Path | None:
    exact = folder / name
    if exact.is_file():
        return exact
    for candidate in folder.iterdir():
        if candidate.name.lower() == name.lower() and candidate.is_file():
            return candidate
    if required:
        raise InputError(f"{name} not found in the dump folder", path=str(folder))
    return None


def _rows(path: Path) -> Iterator[dict]:
    """Yield the attributes of each ``<row>`` of a dump file, clearing the tree as it goes."""
    with path.open("rb") as fh:
        try:
            root = None
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if root is None:
                    root = elem
                elif event == "end" and elem.tag == "row":
                    yield dict(elem.attrib)
                    root.clear()
        except ET.ParseError as exc:
            line, column = exc.position
            problem = re.sub(r": line \d+, column \d+$", "", str(exc))
            raise InputError(
                f"malformed XML: {problem} (column {column})", path=str(path), line=line
            ) from None


def _need(row: dict, key: str, path: Path) -> str:
    value = row.get(key, "").strip()
    if not value:
        raise InputError(f"row without {key}: {_brief(row)}", path=str(path), field=key)
    return value


def _ts(row: dict, key: str, path: Path) -> str:
    """The row's timestamp as RFC 3339, read as UTC when it has no zone."""
    value = _need(row, key, path)
    if not _ZONE.search(value):
        value += "Z"
    try:
        parse_ts(value, key)
    except EventError as exc:
        raise InputError(
            f"row Id={row.get('Id')}: {exc.problem}", path=str(path), field=key
        ) from None
    return value


def _brief(row: dict) -> str:
    return ", ".join(f"{k}={v[:30]!r}" for k, v in list(row.items())[:4])
