"""Any model's people lists held to the same top-1% exposure cap tribes ranks under.

tribes keeps the top 1% of accounts within ``top_exposure_cap`` of the slots of every list
prefix; the baselines do not (popularity gives them almost every slot). So that a comparison
can also be made among lists that meet the cap, :func:`capped_lists` re-ranks any model's lists
the way tribes does (:func:`tribes.ranking.cap_top_exposure`): position by position over all the
lists, where more lists would show a top account than the cap allows, the weakest appearances
(the latest in their list) move down and the model's next other person moves up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ranking import cap_top_exposure

__all__ = ["capped_lists"]


def _queue(lists: np.ndarray, mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first ``width`` entries where ``mask`` holds, in list order, -1 padded, and
    their scores ``-position`` (earlier: higher). O(rows × columns)."""
    order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    kept = np.take_along_axis(mask, order, axis=1)
    items = np.where(kept, np.take_along_axis(lists, order, axis=1), -1)
    score = np.where(kept, -order.astype(np.float32), 0.0).astype(np.float32)
    pad = width - items.shape[1]
    if pad > 0:
        items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
        score = np.pad(score, ((0, 0), (0, pad)))
    return items, score


def capped_lists(
    recommend: Callable[[np.ndarray, int], np.ndarray],
    users: np.ndarray,
    k: int,
    is_top: np.ndarray,
    cap: float,
    seed: int = 0,
) -> np.ndarray:
    """(len(users), k) int32: ``recommend(users, width)``'s lists in which the accounts marked
    ``is_top`` fill at most ``cap`` of the filled slots of the first j positions of these lists
    together, for every j ≤ k.

    ``recommend`` returns each user's list, best first, -1 padded (a model's
    ``recommend_people``). Lists are fetched ``2k`` long, and longer (doubling, at most
    ``k + is_top.sum()``) for users whose list is full but holds fewer than ``k`` other people,
    so a top account's place can be taken by the next other person the model ranks. Within a
    list, top accounts keep their order, and so do the others; lists the cap does not bind come
    back unchanged. A user with nothing but top accounts left still gets them (lists keep the
    length they had): the cap then holds as far as the model's lists allow. O(users × width).
    """
    if not 0 <= cap <= 1:
        raise ValueError(f"cap: must be between 0 and 1, got {cap!r}")
    users = np.asarray(users, dtype=np.int64).ravel()
    is_top = np.asarray(is_top, dtype=bool)
    limit = k + int(is_top.sum())
    width = min(2 * k, limit)
    lists = np.asarray(recommend(users, width))
    while width < limit:
        valid = lists >= 0
        others = np.count_nonzero(valid & ~is_top[np.maximum(lists, 0)], axis=1)
        short = (others < k) & (np.count_nonzero(valid, axis=1) == width)
        if not short.any():
            break
        wider = min(2 * width, limit)
        grown = np.full((len(users), wider), -1, dtype=lists.dtype)
        grown[:, :width] = lists
        grown[short] = recommend(users[short], wider)
        lists, width = grown, wider
    valid = lists >= 0
    top_here = valid & is_top[np.maximum(lists, 0)]
    top, top_score = _queue(lists, top_here, k)
    other, other_score = _queue(lists, valid & ~top_here, k)
    take, _ = cap_top_exposure(top, top_score, other, other_score, cap, seed, rows=users)
    both = np.hstack([other, top])
    return np.where(take >= 0, np.take_along_axis(both, np.maximum(take, 0), axis=1), -1).astype(
        np.int32
    )
