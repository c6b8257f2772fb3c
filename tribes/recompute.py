"""The batch job: store → fitted model → a new version under the models root.

``recompute`` is what ``tribes recompute`` and scheduled jobs call. A failure or a kill at
any point leaves ``current`` untouched (see ``tribes.artifacts``). BLAS/OpenMP pools are
capped so a recompute on the API's machine does not starve the workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from .artifacts import ModelStore
from .model import TribeModel
from .parallel import workers
from .store import Store

__all__ = ["open_current", "publish", "recompute"]


def open_current(models_root: str | Path):
    """The :class:`~tribes.serving.Recommender` of the current version, or None."""
    from .serving import Recommender

    path = ModelStore(models_root).current_path()
    return None if path is None else Recommender.open(path)


def recompute(
    store: Store,
    models_root: str | Path,
    params: Mapping[str, Any] | None = None,
    *,
    keep: int = 5,
    threads: int = 1,
    on_stage: Callable[[str], None] | None = None,
) -> tuple[str, TribeModel]:
    """Fit a model on the whole store, publish it as the new ``current``, prune old versions.

    Returns the new version name and the fitted model. Tribe ids carry over from the
    current version by member overlap.
    """
    models = ModelStore(models_root)
    previous = open_current(models_root)
    with threadpool_limits(limits=threads), workers(threads):
        model = TribeModel(**dict(params or {})).fit(store, previous=previous, on_stage=on_stage)
    return publish(model, models, store, previous, keep), model


def publish(model: Any, models: ModelStore, store: Store, previous: Any, keep: int) -> str:
    """Write ``model`` as the new ``current`` version, prune old versions and the live changes
    the previous model already included. Returns the version name. Any engine's last step."""
    with models.new_version() as writer:
        model.write_to(writer)
        name = writer.name
    models.prune(keep)
    # Live changes the *previous* model already included are no longer needed by any worker
    # (workers still on it need only later ones; the new model includes even more).
    if previous is not None:
        store.prune_live_changes(int(previous.manifest.get("live_seq", 0)))
    return name
