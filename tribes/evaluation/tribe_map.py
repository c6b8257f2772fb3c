"""The tribe map: tribes as nodes, the conversation between them as edges.

Where a network's tribes hold most of their conversation inside, the user-level picture
(:func:`tribes.evaluation.report.plot_tribe_graph`) shows them apart; where they do not (much
real messaging), it is one knot of edges. The map shows the same partition at the scale of
tribes: how big each is, how much of its members' conversation stays inside it, and which
tribes talk with which.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..communities import kept_inside

__all__ = ["TribeMap", "plot_tribe_map", "tribe_map"]


@dataclass(frozen=True)
class TribeMap:
    """The ``K`` largest tribes (tribe indices ``0..K-1``, as ``labels`` number them by size).

    Attributes
    ----------
    sizes : (K,) int, members
    inside : (K,) float, share of the members' interaction weight that stays in the tribe
        (0 for a tribe without any)
    between : (K, K) float, symmetric, zero diagonal: interaction weight between two tribes
    """

    sizes: np.ndarray
    inside: np.ndarray
    between: np.ndarray


def tribe_map(interaction: sp.spmatrix, labels: np.ndarray, max_tribes: int = 30) -> TribeMap:
    """Sizes, inside shares and between-tribe weights of the ``max_tribes`` largest tribes.

    ``interaction``: (U, U) sparse, weights >= 0, either direction (it is symmetrised);
    ``labels``: (U,) tribe index by decreasing size, -1 for none. A member's ties to people
    outside these tribes count in their volume, not inside. O(nnz + U).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if interaction.shape != (n, n):
        raise ValueError(f"interaction: expected shape ({n}, {n}), got {interaction.shape}")
    if max_tribes < 1:
        raise ValueError(f"max_tribes: must be >= 1, got {max_tribes!r}")
    k = int(min(max_tribes, labels.max() + 1 if n else 0))
    mine = np.flatnonzero((labels >= 0) & (labels < k))
    member_of = sp.csr_matrix((np.ones(len(mine)), (mine, labels[mine])), shape=(n, max(k, 1)))
    directed = (member_of.T @ sp.csr_matrix(interaction) @ member_of).toarray()[:k, :k]
    tied = directed + directed.T  # symmetrised on the K x K tribes, not on the U x U graph
    between = tied - np.diag(np.diag(tied))
    sizes = np.bincount(labels[mine], minlength=k)[:k]
    return TribeMap(sizes=sizes, inside=kept_inside(interaction, labels)[:k], between=between)


def plot_tribe_map(
    interaction: sp.spmatrix,
    labels: np.ndarray,
    tribes: list[dict],
    path: str | Path,
    *,
    max_tribes: int = 30,
    seed: int = 0,
) -> Path:
    """Draw :func:`tribe_map` to ``path`` (PNG): a circle per tribe (area: members; colour: the
    share of its conversation that stays inside), a line per pair of tribes that talk (width:
    their interaction weight). ``tribes``: the model's ``tribes_`` (labels by tribe index)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    from .report import _save

    found = tribe_map(interaction, labels, max_tribes)
    k = len(found.sizes)
    g = nx.Graph()
    g.add_nodes_from(range(k))
    top = found.between.max() if k > 1 else 0.0
    rows, cols = np.nonzero(np.triu(found.between, 1))
    g.add_weighted_edges_from(
        (int(a), int(b), float(found.between[a, b] / top)) for a, b in zip(rows, cols, strict=True)
    )
    pos = nx.spring_layout(g, weight="weight", seed=seed, k=2.0 / np.sqrt(max(k, 1)))
    fig, ax = plt.subplots(figsize=(9, 8))
    widths = [0.3 + 6.0 * np.sqrt(g.edges[e]["weight"]) for e in g.edges]
    nx.draw_networkx_edges(g, pos, ax=ax, width=widths, alpha=0.25, edge_color="#555555")
    area = 2000.0 * found.sizes / max(int(found.sizes.max()) if k else 1, 1)
    drawn = nx.draw_networkx_nodes(
        g,
        pos,
        ax=ax,
        node_size=np.maximum(area, 60.0),
        node_color=found.inside,
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        linewidths=0.5,
        edgecolors="white",
    )
    for t in range(k):
        name = tribes[t]["label"] if t < len(tribes) else f"tribe {t}"
        name = name if len(name) <= 32 else name[:31] + "…"
        ax.text(
            *pos[t],
            f"{name}\n{found.sizes[t]:,}",
            fontsize=7,
            ha="center",
            va="center",
            bbox={"facecolor": "white", "alpha": 0.6, "edgecolor": "none", "pad": 1},
        )
    fig.colorbar(drawn, ax=ax, shrink=0.6, label="share of its conversation inside the tribe")
    ax.set_title(
        f"{k} largest tribes ({int(found.sizes.sum()):,} people)\n"
        "area: members · colour: conversation kept inside · lines: conversation between tribes",
        fontsize=10,
    )
    ax.axis("off")
    return _save(fig, path)
