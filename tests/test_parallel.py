"""Blocks of work on several threads (tribes.parallel): same results, in order, errors raised."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tribes.parallel import map_blocks, worker_count, workers


def test_map_blocks_keeps_block_order_and_uses_the_set_number_of_threads():
    seen = set()

    def work(i: int) -> int:
        seen.add(threading.current_thread().name)
        return i * i

    assert worker_count() == 1
    assert map_blocks(work, range(50)) == [i * i for i in range(50)]
    assert seen == {threading.current_thread().name}
    seen.clear()
    with workers(2):
        assert worker_count() == 2
        assert map_blocks(work, range(50)) == [i * i for i in range(50)]
    assert worker_count() == 1
    assert all(name.startswith("tribes-block") for name in seen) and 1 <= len(seen) <= 2


def test_map_blocks_raises_a_blocks_error():
    def work(i: int) -> int:
        if i == 7:
            raise ValueError("block 7")
        return i

    with workers(2), pytest.raises(ValueError, match="block 7"):
        map_blocks(work, range(20))


def test_candidates_and_lists_are_the_same_on_two_threads(monkeypatch):
    from tribes import candidates, ranking
    from tribes.model import _candidates, snapshot_from
    from tribes.params import Params
    from tribes.synth import SynthConfig, generate

    monkeypatch.setattr(candidates, "_CHUNK_WORK", 2_000)  # many product blocks
    monkeypatch.setattr(ranking, "_SCORE_CHUNK", 800)  # many scoring blocks
    snap = snapshot_from(list(generate(SynthConfig(n_users=500, seed=9))))
    params = Params(seed=1).validate()
    ctx, one, _ = _candidates(snap, params, False)
    lists = ranking.rank_people(ctx, one)
    with workers(2):
        ctx2, two, _ = _candidates(snap, params, False)
        lists2 = ranking.rank_people(ctx2, two)
    for name in one:
        assert (one[name] != two[name]).nnz == 0, name
    assert np.array_equal(lists.items, lists2.items) and np.array_equal(lists.scores, lists2.scores)
    assert np.array_equal(lists.flags, lists2.flags)


def test_ranges_by_work_cover_every_row_once_near_the_work_budget():
    from tribes.parallel import ranges_by_work

    work = np.array([3, 0, 9, 1, 1, 1, 20, 2, 2, 2, 2])
    ranges = ranges_by_work(work, 5)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(len(work)))
    assert all(b > a for a, b in ranges)
    assert len(ranges) <= int(np.ceil(work.sum() / 5)) + 1  # about one range per budget of work
    assert (6, 7) in ranges  # a row heavier than the budget is a range of its own, never split
    assert ranges_by_work(np.zeros(0), 5) == []
