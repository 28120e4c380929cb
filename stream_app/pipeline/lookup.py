"""Resolve what a person types to a stored entity name: exact, then watch-list alias, then case.

`tesla`, `$TSLA`, `TSLA` and `@Tesla` all reach `Tesla` when the watch-list says so; `veltro
motors` reaches `Veltro Motors` by case alone. A name that matches nothing gets the closest
known names (difflib) so a 404 can suggest them.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stream_app.pipeline.entities import WatchList

PREFIXES = "$@#"


def fold(text: str) -> str:
    """Case- and width-insensitive form, surrounding spaces dropped."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def alias_table(watch: WatchList) -> dict[str, str]:
    """Folded name or alias -> entity name. Exact aliases (`$tsla`) win over their bare form (`tsla`)."""
    table: dict[str, str] = {}
    bare: dict[str, str] = {}
    for entity in watch.entities:
        for alias in (entity.name, *entity.aliases):
            folded = fold(alias)
            table.setdefault(folded, entity.name)
            if folded[:1] in PREFIXES and len(folded) > 1:
                bare.setdefault(folded[1:], entity.name)
    return {**bare, **table}


@dataclass(frozen=True)
class Lookup:
    """`entity` is the stored name, or None with `suggestions` (closest first)."""

    query: str
    entity: str | None
    suggestions: list[str] = field(default_factory=list)


def resolve(name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None, limit: int = 5) -> Lookup:
    """Exact stored name, else a watch-list alias, else a case-insensitive stored name
    (`abc` finds `$ABC` and `#abc` too), else nothing, with up to `limit` close names."""
    names = sorted(set(known) | set((aliases or {}).values()))
    if name in names:
        return Lookup(name, name)
    folded = fold(name)
    if aliases and folded in aliases:
        return Lookup(name, aliases[folded])
    by_fold: dict[str, str] = {}
    for candidate in names:
        by_fold.setdefault(fold(candidate), candidate)
    for candidate in names:
        if fold(candidate)[:1] in PREFIXES:
            by_fold.setdefault(fold(candidate)[1:], candidate)
    if folded in by_fold:
        return Lookup(name, by_fold[folded])
    choices = {**(aliases or {}), **by_fold}
    close = difflib.get_close_matches(folded, list(choices), n=limit * 2, cutoff=0.6)
    suggestions = list(dict.fromkeys(choices[c] for c in close))[:limit]
    return Lookup(name, None, suggestions)
