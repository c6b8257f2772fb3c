"""The soak's short form (``make soak`` runs the long one): gunicorn on 127.0.0.1 at a steady
rate with events interleaved, for 15 s. No request fails, no event is lost, the API key never
reaches the logs, a recompute publishes a new model under load, the workers keep running and
their private memory does not climb."""

from __future__ import annotations

import gc
import shutil
import weakref

import pytest

from benchmarks.soak import run_soak
from tests.api_fixtures import _template, make_world

pytestmark = pytest.mark.slow  # real gunicorn, 15 s of load


def test_short_soak_no_errors_no_loss_flat_memory(tmp_path_factory):
    root = tmp_path_factory.mktemp("soak")
    shutil.copytree(_template(tmp_path_factory), root, dirs_exist_ok=True)
    result = run_soak(
        root,
        seconds=15,
        rate=60,
        connections=4,
        events_every=7,
        sample_seconds=1.0,
        recompute_every=4,
    )
    print("\n".join(result.lines()))
    assert result.requests >= 0.95 * 15 * 60, result.lines()
    assert result.errors == 0, result.lines()
    assert result.event_batches >= 120 and result.lost == 0, result.lines()
    assert not result.key_in_logs and not result.workers_restarted
    assert result.recomputes >= 1 and result.recompute_failures == 0  # models swapped under load
    # 15 s is too short for a slope to mean much: bound the growth after warm-up instead.
    warm = len(result.anon_mib) // 3
    assert result.anon_mib[-1] - result.anon_mib[warm] < 40, result.anon_mib  # a swap included


def test_a_swapped_out_model_is_freed(tmp_path_factory):
    """Flat memory across model swaps: once a worker serves the new version, nothing keeps the
    old one (its arrays, render caches, starter packs) alive."""
    world = make_world(tmp_path_factory, "soak-swap")
    try:
        client = world.client
        users = [str(u) for u in world.service.holder.get().user_ids[:40]]
        for user in users:
            for kind in ("people", "conversations"):
                assert client.get(f"/v1/users/{user}/suggestions/{kind}").status_code == 200
        assert client.get("/v1/tribes/0").status_code in (200, 404)
        old = weakref.ref(world.service.holder.get())
        new = world.recompute()
        gc.disable()  # freed as soon as the last reference goes, not at the next full collection
        try:
            for user in users:
                response = client.get(f"/v1/users/{user}/suggestions/people")
                assert response.status_code == 200 and response.json["model_version"] == new
            assert old() is None, [type(r).__name__ for r in gc.get_referrers(old())]
        finally:
            gc.enable()
    finally:
        world.close()
