"""Importers: convert real public dumps into tribes event JSON Lines.

Each importer is ``iter_events(src, **options) -> Iterator[dict]`` yielding JSON-ready event
dicts that pass :func:`tribes.events.validate`, ordered so that every ``reply_to`` target is
emitted before its replies. Options are keyword arguments with defaults, documented in each
importer's docstring (``inspect.signature`` lists them); every importer also accepts
``stats=dict`` which it fills with counters (records read, skipped and why) when exhausted.

Where a format has ground truth, ``TRUTH_READERS[name](src, **options)`` yields it: for
``snap-ego`` the circles, ``{"circle_id": "EGO:NAME", "ego": EGO, "members": [ids]}``; for
``graph`` (GraphML, GML, GEXF, Pajek, node-link JSON) a node attribute, ``{"user_id": ID,
"tribes": [groups]}``.

>>> sorted(IMPORTERS)
['edgelist', 'graph', 'snap-ego', 'stackexchange']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tribes.errors import InputError
from tribes.importers import edgelist, graph, snap_ego, stackexchange

__all__ = ["IMPORTERS", "TRUTH_READERS", "Importer", "get_importer"]

Importer = Callable[..., Iterator[dict]]
"""``iter_events(src: str | Path, **options) -> Iterator[dict]``."""

IMPORTERS: dict[str, Importer] = {
    "stackexchange": stackexchange.iter_events,
    "snap-ego": snap_ego.iter_events,
    "edgelist": edgelist.iter_events,
    "graph": graph.iter_events,
}

TRUTH_READERS: dict[str, Callable[..., Iterator[dict]]] = {
    "snap-ego": snap_ego.iter_truth,
    "graph": graph.iter_truth,
}


def get_importer(name: str) -> Importer:
    """The importer registered as ``name``; :class:`InputError` lists the known names."""
    try:
        return IMPORTERS[name]
    except KeyError:
        known = ", ".join(sorted(IMPORTERS))
        raise InputError(
            f"unknown format {name!r}; expected one of {known}", field="format"
        ) from None
