"""Entity extraction: cashtags, hashtags, known @handles, review product/brand, watch-list aliases.

Watch-list aliases are matched with one Aho-Corasick automaton over the lower-cased text
(one pass, however many aliases), then kept only where the match sits on word boundaries.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from stream_app.engine.types import DOMAINS
from stream_app.errors import WatchListError

CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")
HASHTAG = re.compile(r"(?<![\w#])#(\w{2,64})", re.UNICODE)
MENTION = re.compile(r"(?<![\w@])@(\w{1,30})", re.UNICODE)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


@dataclass(frozen=True)
class WatchEntity:
    name: str
    aliases: tuple[str, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    domain: str | None = None  # `finance` routes its posts to the finance head (pipeline/routing.py)


@dataclass
class WatchList:
    entities: list[WatchEntity]

    @classmethod
    def load(cls, path: Path) -> WatchList:
        """YAML: `entities: [{name: Tesla, aliases: [$TSLA, "@Tesla", tesla motors], alerts: {...}}]`.

        Raises `WatchListError` (naming the file and SM_WATCHLIST) for a missing file, bad YAML
        or any other shape, before anything else (the model) is loaded."""
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise _bad_watchlist(path, f"cannot read the watch-list ({exc.strerror or exc})") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise _bad_watchlist(path, f"the watch-list is not valid YAML{where}") from exc
        return cls([_entity(path, index, item) for index, item in enumerate(_entity_items(path, document))])

    def names(self) -> set[str]:
        return {e.name for e in self.entities}

    def domains(self) -> dict[str, str]:
        """Entity name -> its declared `domain:` (entries without one are left out)."""
        return {e.name: e.domain for e in self.entities if e.domain}


def _bad_watchlist(path: Path, problem: str) -> WatchListError:
    return WatchListError(
        problem,
        setting=f"file {path} (SM_WATCHLIST)",
        hint="write `entities: [{name: ..., aliases: [...]}]` (see deploy/watchlist/demo.yaml) or unset SM_WATCHLIST",
    )


def _entity_items(path: Path, document: object) -> list[object]:
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise _bad_watchlist(path, f"the watch-list is a YAML {kind}, not a mapping with `entities:`")
    items = document.get("entities") or []
    if not isinstance(items, list):
        raise _bad_watchlist(path, "`entities:` in the watch-list is not a list")
    return items


def _entity(path: Path, index: int, item: object) -> WatchEntity:
    if not isinstance(item, dict) or not str(item.get("name") or "").strip():
        raise _bad_watchlist(path, f"watch-list entity #{index + 1} has no `name:`")
    aliases = item.get("aliases") or []
    alerts = item.get("alerts") or {}
    if not isinstance(aliases, list) or not isinstance(alerts, dict):
        raise _bad_watchlist(path, f"watch-list entity {item['name']!r}: `aliases` must be a list, `alerts` a mapping")
    domain = item.get("domain")
    if domain is not None and domain not in DOMAINS:
        raise _bad_watchlist(path, f"watch-list entity {item['name']!r}: `domain` must be one of {', '.join(DOMAINS)}")
    return WatchEntity(str(item["name"]), tuple(str(a) for a in aliases), alerts, domain)


def entity_words(entity: WatchEntity) -> frozenset[str]:
    """An entity's own names, split into words: they are left out of "over-represented terms"."""
    words = {w.strip("$@#").casefold() for text in (entity.name, *entity.aliases) for w in text.split()}
    return frozenset(w for w in words if w)


class EntityExtractor:
    """`extract(text, product=None, brand=None) -> list[str]`, sorted and de-duplicated."""

    def __init__(self, watch_list: WatchList | None = None) -> None:
        self.watch_list = watch_list or WatchList([])
        self._automaton: Any = ahocorasick.Automaton()
        self._handles: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._canonical: dict[str, str] = {}
        for entity in self.watch_list.entities:
            self._canonical[_fold(entity.name)] = entity.name
            for alias in (entity.name, *entity.aliases):
                folded = _fold(alias)
                if folded.startswith("@"):
                    self._handles[folded[1:]] = entity.name
                elif folded.startswith("$"):
                    self._tags["$" + folded[1:]] = entity.name
                elif folded.startswith("#"):
                    self._tags["#" + folded[1:]] = entity.name
                else:
                    self._automaton.add_word(folded, (len(folded), entity.name))
        self._has_words = len(self._automaton) > 0
        if self._has_words:
            self._automaton.make_automaton()

    def canonical(self, raw: str) -> str:
        return self._canonical.get(_fold(raw), raw)

    def extract(self, text: str, product: str | None = None, brand: str | None = None) -> list[str]:
        found: set[str] = set()
        for match in CASHTAG.finditer(text):
            tag = "$" + match.group(1).upper()
            found.add(self._tags.get(_fold(tag), tag))
        for match in HASHTAG.finditer(text):
            tag = "#" + _fold(match.group(1))
            found.add(self._tags.get(tag, tag))
        for match in MENTION.finditer(text):
            handle = _fold(match.group(1))
            if handle in self._handles:
                found.add(self._handles[handle])
        if self._has_words:
            folded = _fold(text)
            for end, (length, name) in self._automaton.iter(folded):
                start = end - length + 1
                before = folded[start - 1] if start > 0 else " "
                after = folded[end + 1] if end + 1 < len(folded) else " "
                if not _is_word_char(before) and not _is_word_char(after) and before not in "@#$":
                    found.add(name)
        for value in (brand, product):
            if value and value.strip():
                found.add(self.canonical(value.strip()))
        return sorted(found)
